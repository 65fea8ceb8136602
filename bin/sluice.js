#!/usr/bin/env node
// Node >= 22.18 runs the TypeScript sources directly (type stripping): no build step.
import { main } from "../src/cli/main.ts"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect } from "effect"

main.pipe(Effect.provide(NodeServices.layer), NodeRuntime.runMain)
