package jobs

import "context"

// Start and Stop drive the two halves of Run separately, so the tests can
// check the graceful and the hard stop on their own.
func (c *Client) Start(ctx context.Context) error { return c.start(ctx) }

func (c *Client) Stop(ctx context.Context) error { return c.stop(ctx) }
