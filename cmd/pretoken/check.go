package main

import (
	"context"
	"fmt"
)

// checkCmd lists what abandoned or killed applies left in the table,
// changing nothing.
type checkCmd struct {
	tableFlag
}

func (c *checkCmd) Run(e *env) error {
	ctx := context.Background()
	s, err := c.store(ctx, e)
	if err != nil {
		return err
	}
	left, err := s.Leftovers(ctx)
	if err != nil {
		return err
	}
	total := 0
	for _, l := range left {
		fmt.Fprintf(e.stdout, "%s  %s  %d bytes  %s\n", l.PK, l.SK, l.Bytes, l.Why)
		total += l.Bytes
	}
	if len(left) == 0 {
		fmt.Fprintf(e.stdout, "no leftovers in table %s\n", c.Table)
		return nil
	}
	fmt.Fprintf(e.stdout, "%d leftover item(s), %d bytes, in table %s; nothing was changed\n", len(left), total, c.Table)
	return nil
}
