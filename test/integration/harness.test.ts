/**
 * The harness starts real servers: PostgreSQL with scram-sha-256 and md5
 * roles, Kafka, and FerretDB with PLAIN credentials checked by PostgreSQL.
 */
import { randomUUID } from "node:crypto"
import { Kafka, logLevel, Partitioners } from "kafkajs"
import { MongoClient } from "mongodb"
import pg from "pg"
import { describe, expect, inject, it } from "vitest"

const servers = inject("servers")

const withClient = async <T>(config: pg.ClientConfig, use: (client: pg.Client) => Promise<T>): Promise<T> => {
  const client = new pg.Client(config)
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}

describe("postgres", () => {
  const { pg: info } = servers

  it("logs sluice_backend in with scram-sha-256", async () => {
    const user = await withClient(
      { host: info.host, port: info.port, user: info.backend.user, password: info.backend.password, database: info.databases.app },
      async (c) => (await c.query<{ current_user: string }>("SELECT current_user")).rows[0]?.current_user,
    )
    expect(user).toBe("sluice_backend")
  })

  it("logs sluice_md5 in with md5", async () => {
    const user = await withClient(
      { host: info.host, port: info.port, user: info.md5.user, password: info.md5.password, database: info.databases.app2 },
      async (c) => (await c.query<{ current_user: string }>("SELECT current_user")).rows[0]?.current_user,
    )
    expect(user).toBe("sluice_md5")
  })

  it("refuses a wrong password", async () => {
    await expect(
      withClient({ host: info.host, port: info.port, user: info.backend.user, password: "wrong", database: "app" }, async () => {}),
    ).rejects.toThrow(/password authentication failed/)
  })

  it("stores the passwords as SCRAM and md5 hashes, and pg_hba asks for those methods", async () => {
    await withClient({ connectionString: info.superuser.url }, async (c) => {
      const stored = await c.query<{ rolname: string; scram: boolean; md5: boolean }>(
        `SELECT rolname, rolpassword LIKE 'SCRAM-SHA-256$%' AS scram, rolpassword LIKE 'md5%' AS md5
           FROM pg_authid WHERE rolname = ANY($1) ORDER BY rolname`,
        [[info.backend.user, info.md5.user]],
      )
      expect(stored.rows).toEqual([
        { rolname: info.backend.user, scram: true, md5: false },
        { rolname: info.md5.user, scram: false, md5: true },
      ])
      const dbs = await c.query<{ datname: string; owner: string }>(
        `SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname IN ('app', 'app2') ORDER BY datname`,
      )
      expect(dbs.rows).toEqual([
        { datname: "app", owner: info.backend.user },
        { datname: "app2", owner: info.backend.user },
      ])
      if (!info.managed) return // your server's pg_hba.conf is yours
      const hba = await c.query<{ type: string; user_name: string[]; address: string | null; auth_method: string }>(
        `SELECT type, user_name, address, auth_method FROM pg_hba_file_rules WHERE error IS NULL ORDER BY line_number`,
      )
      expect(hba.rows).toEqual([
        { type: "local", user_name: ["all"], address: null, auth_method: "trust" },
        { type: "host", user_name: [info.md5.user], address: "127.0.0.1", auth_method: "md5" },
        { type: "host", user_name: [info.plain.user], address: "127.0.0.1", auth_method: "password" },
        { type: "host", user_name: ["all"], address: "127.0.0.1", auth_method: "scram-sha-256" },
      ])
      const settings = await c.query<{ name: string; setting: string }>(
        `SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses', 'max_connections') ORDER BY name`,
      )
      expect(settings.rows).toEqual([
        { name: "listen_addresses", setting: "127.0.0.1" },
        { name: "max_connections", setting: "200" },
      ])
    })
  })
})

describe("kafka", () => {
  it("produces and consumes a message", async () => {
    const kafka = new Kafka({ clientId: "harness-test", brokers: servers.kafka.brokers.split(","), logLevel: logLevel.WARN })
    const topic = `harness-${randomUUID()}`
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true })
    await admin.disconnect()

    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    await producer.send({ topic, acks: -1, messages: [{ key: "session-1", value: "hello sluice" }] })
    await producer.disconnect()

    const consumer = kafka.consumer({ groupId: `harness-${randomUUID()}` })
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    const received = await new Promise<{ key: string; value: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no message within 30 s")), 30_000)
      void consumer.run({
        eachMessage: async ({ message }) => {
          clearTimeout(timer)
          resolve({ key: message.key?.toString() ?? "", value: message.value?.toString() ?? "" })
        },
      })
    })
    await consumer.disconnect()
    expect(received).toEqual({ key: "session-1", value: "hello sluice" })
  })
})

describe("mongo (FerretDB)", () => {
  it("inserts and finds documents with PLAIN credentials", async () => {
    const client = new MongoClient(servers.mongo.clientUrl, { serverSelectionTimeoutMS: 5000 })
    await client.connect()
    try {
      const hello = await client.db("admin").command({ hello: 1 })
      expect(hello.isWritablePrimary).toBe(true)
      const collection = client.db("harness").collection<{ _id: string; n: number; tags: string[] }>(`c_${randomUUID().slice(0, 8)}`)
      await collection.insertMany([
        { _id: "a", n: 1, tags: ["x"] },
        { _id: "b", n: 2, tags: ["y", "z"] },
      ])
      const found = await collection.find({ n: { $gte: 2 } }).toArray()
      expect(found).toEqual([{ _id: "b", n: 2, tags: ["y", "z"] }])
      await collection.drop()
    } finally {
      await client.close()
    }
  })

  it.runIf(servers.mongo.managed)("refuses a wrong password (PostgreSQL checks it)", async () => {
    const url = new URL(servers.mongo.clientUrl)
    url.password = "wrong"
    const client = new MongoClient(url.toString(), { serverSelectionTimeoutMS: 5000 })
    try {
      await expect(client.db("harness").collection("c").findOne({})).rejects.toThrow()
    } finally {
      await client.close()
    }
  })
})
