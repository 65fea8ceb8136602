// Command sluice-ferretdb runs FerretDB v1 (the embeddable package) for
// Sluice's integration tests: one listener on a loopback TCP address, the
// postgresql or sqlite handler, until SIGTERM or SIGINT.
//
// Flags fall back to environment variables:
//
//	-listen      FERRETDB_LISTEN          TCP address, e.g. 127.0.0.1:27017
//	-handler     FERRETDB_HANDLER         postgresql (default) or sqlite
//	-postgresql  FERRETDB_POSTGRESQL_URL  e.g. postgres://127.0.0.1:5432/ferretdb
//	-sqlite      FERRETDB_SQLITE_URL      e.g. file:/tmp/ferretdb-data/
//	-log-level   FERRETDB_LOG_LEVEL       debug, info, warn (default), error
//
// With the postgresql handler, leave the user out of the URL: FerretDB then
// opens a PostgreSQL pool with the credentials each MongoDB client gives
// (PLAIN), so PostgreSQL really checks them.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func main() {
	listen := flag.String("listen", env("FERRETDB_LISTEN", "127.0.0.1:27017"), "TCP listen address")
	handler := flag.String("handler", env("FERRETDB_HANDLER", "postgresql"), "backend handler: postgresql or sqlite")
	pgURL := flag.String("postgresql", env("FERRETDB_POSTGRESQL_URL", ""), "PostgreSQL URL for the postgresql handler")
	sqliteURL := flag.String("sqlite", env("FERRETDB_SQLITE_URL", ""), "SQLite directory URI for the sqlite handler")
	logLevel := flag.String("log-level", env("FERRETDB_LOG_LEVEL", "warn"), "log level: debug, info, warn, error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fail("bad -log-level %q: %v", *logLevel, err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Logger:   logger,
		Handler:  *handler,
	}
	switch *handler {
	case "postgresql":
		if *pgURL == "" {
			fail("-postgresql (or FERRETDB_POSTGRESQL_URL) is required with the postgresql handler")
		}
		cfg.PostgreSQLURL = *pgURL
	case "sqlite":
		if *sqliteURL == "" {
			fail("-sqlite (or FERRETDB_SQLITE_URL) is required with the sqlite handler")
		}
		cfg.SQLiteURL = *sqliteURL
	default:
		fail("unknown -handler %q: use postgresql or sqlite", *handler)
	}

	f, err := ferretdb.New(cfg)
	if err != nil {
		fail("%v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// The harness waits for this line, then for a MongoDB ping.
	go func() {
		fmt.Fprintf(os.Stdout, "listening %s\n", f.MongoDBURI())
	}()

	if err := f.Run(ctx); err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "sluice-ferretdb: "+format+"\n", args...)
	os.Exit(2)
}
