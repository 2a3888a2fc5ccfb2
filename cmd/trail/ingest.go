package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
)

func newIngestCmd(e *env) *cobra.Command {
	var (
		sf     storeFlags
		tenant string
		policy trail.Policy
		batch  int
	)
	cmd := &cobra.Command{
		Use:   "ingest --tenant T FILE|-",
		Short: "Append NDJSON events to the store",
		Long: `Ingest reads events, one JSON object per line, and appends them to the tenant's
log in batches. Each event is validated and redacted as on any append. A line
that is refused (malformed, or invalid for the catalog) is reported and the
rest of its batch is still stored.

It prints how many events were stored, marked (stored with broken rules or
redactions) and refused, and exits 1 if any line was refused.`,
		Example: `  trail ingest --tenant acme events.ndjson
  my-app --dump-audit | trail ingest --tenant acme --postgres postgres://localhost/trail -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if m := trail.CheckTenant(tenant); m != "" {
				return usageError("--tenant: %s", m)
			}
			if batch < 1 || batch > 10000 {
				return usageError("--batch: must be 1 to 10000")
			}
			in, closeIn, err := e.input(args[0])
			if err != nil {
				return err
			}
			defer closeIn()
			d, err := sf.open(cmd.Context(), e, true)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer d.Close()
			ing := &ingester{store: d.Store, tenant: tenant, policy: policy, out: e.stdout}
			err = ing.run(cmd.Context(), in, batch)
			fmt.Fprintf(e.stdout, "%d stored (%d marked), %d refused\n", ing.stored, ing.marked, ing.refused)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if ing.refused > 0 {
				return errFound
			}
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant whose log the events join (required)")
	cmd.Flags().BoolVar(&policy.Strict, "strict", false, "refuse events that break a catalog rule instead of marking them")
	cmd.Flags().BoolVar(&policy.AllowCustom, "allow-custom", false, "accept actions that are not in the catalog (marked)")
	cmd.Flags().IntVar(&batch, "batch", 500, "events per append")
	return cmd
}

// ingester appends lines in batches and counts the outcome.
type ingester struct {
	store                   trail.Store
	tenant                  string
	policy                  trail.Policy
	out                     io.Writer
	stored, marked, refused int

	lines  []int // line number of each event in the pending batch
	events []*trail.Event
}

func (g *ingester) run(ctx context.Context, in io.Reader, batch int) error {
	r := bufio.NewReaderSize(in, 64<<10)
	for n := 1; ; n++ {
		line, tooLong, err := readLine(r, trail.MaxEventBytes)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading line %d: %w", n, err)
		}
		switch {
		case tooLong:
			g.refuse(n, trail.Invalid(fmt.Sprintf("line is longer than %d bytes", trail.MaxEventBytes)))
		case len(bytes.TrimSpace(line)) > 0:
			ev, perr := trail.ParseEvent(line)
			if perr != nil {
				g.refuse(n, perr)
				break
			}
			g.lines, g.events = append(g.lines, n), append(g.events, ev)
			if len(g.events) >= batch {
				if err := g.flush(ctx); err != nil {
					return err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return g.flush(ctx)
		}
	}
}

// flush appends the pending batch. A batch is atomic, so when some of its
// events are invalid those are reported and the rest appended again.
func (g *ingester) flush(ctx context.Context) error {
	for len(g.events) > 0 {
		res, err := g.store.Append(ctx, g.tenant, g.events, trail.AppendOptions{Policy: g.policy})
		if err == nil {
			for _, ev := range res.Events {
				g.stored++
				if len(ev.Violations)+len(ev.Redacted) > 0 {
					g.marked++
				}
			}
			break
		}
		bad := badIndexes(err, len(g.events))
		if trail.ErrorCode(err) != trail.EINVALID || len(bad) == 0 {
			return fmt.Errorf("append of lines %d-%d: %w", g.lines[0], g.lines[len(g.lines)-1], err)
		}
		var lines []int
		var events []*trail.Event
		for i := range g.events {
			if errs, ok := bad[i]; ok {
				g.refuse(g.lines[i], trail.Invalid("event refused", errs...))
				continue
			}
			lines, events = append(lines, g.lines[i]), append(events, g.events[i])
		}
		g.lines, g.events = lines, events
	}
	g.lines, g.events = g.lines[:0], g.events[:0]
	return nil
}

// badIndexes groups a batch error's field errors by event index ("[3].actor.id"
// is event 3's "actor.id").
func badIndexes(err error, n int) map[int][]trail.FieldError {
	out := map[int][]trail.FieldError{}
	for _, f := range trail.ErrorFields(err) {
		rest, ok := strings.CutPrefix(f.Path, "[")
		idx, path, ok2 := strings.Cut(rest, "].")
		i, aerr := strconv.Atoi(idx)
		if !ok || !ok2 || aerr != nil || i < 0 || i >= n {
			return nil
		}
		out[i] = append(out[i], trail.FieldError{Path: path, Message: f.Message})
	}
	return out
}

func (g *ingester) refuse(n int, err error) {
	g.refused++
	fmt.Fprintf(g.out, "line %d: refused: %s\n", n, trail.ErrorMessage(err))
	for _, f := range trail.ErrorFields(err) {
		fmt.Fprintf(g.out, "  error  %s: %s\n", f.Path, f.Message)
	}
}
