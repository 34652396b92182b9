package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prost-platform/prost/pkg/jobs"
)

// A service enqueues a job in the transaction that needs it, and a Client
// runs it. (Not run: it needs a database.)
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()

	client, err := jobs.NewClient(pool, jobs.Config{
		Workers: 8,
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = client.Register("email.send", func(ctx context.Context, j *jobs.Job) error {
		var args struct{ To string }
		if err := json.Unmarshal(j.Args, &args); err != nil {
			return jobs.Cancel(err) // retrying will not fix bad args
		}
		fmt.Println("sending to", args.To)
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- client.Run(runCtx) }()

	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// ... the request's own writes ...
		_, _, err := jobs.Insert(ctx, tx, jobs.InsertParams{
			Kind:      "email.send",
			Args:      json.RawMessage(`{"To": "ops@example.com"}`),
			UniqueKey: "welcome:ops@example.com",
		})
		return err
	})
	if err == nil {
		client.Wake() // committed: run it now rather than at the next poll
	}

	stop() // Run stops gracefully: running jobs finish (up to StopTimeout)
	_ = <-done
}
