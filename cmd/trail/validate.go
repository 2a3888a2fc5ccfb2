package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/trailaudit/trail"
	"github.com/trailaudit/trail/catalog"
	"github.com/trailaudit/trail/memory"
	"github.com/trailaudit/trail/redact"
)

func newValidateCmd(e *env) *cobra.Command {
	var (
		policy     trail.Policy
		asJSON     bool
		secretKeys []string
	)
	cmd := &cobra.Command{
		Use:   "validate FILE|-",
		Short: "Check NDJSON events against the catalog and show what Trail would store",
		Long: `Validate reads events, one JSON object per line, runs each through exactly what
an append does (validation against the catalog, then redaction) into an
in-memory store, and prints per line what was redacted and which rules were
broken. Values are never printed, only field paths.

It exits 0 when every event is clean, 1 when any event was refused or marked
(a rule broken or a secret redacted), 2 on a usage error, and 3 when it could
not check (the input could not be read).`,
		Example: `  trail validate events.ndjson
  my-app --dump-audit | trail validate --strict -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, closeIn, err := e.input(args[0])
			if err != nil {
				return err
			}
			defer closeIn()
			v := &trail.Validator{
				Actions:  catalog.Default(),
				Redactor: redact.New(redact.Options{Keys: secretKeys}),
				Limits:   trail.DefaultLimits(),
			}
			rep := &validateReport{w: e.stdout, json: asJSON}
			err = validateStream(cmd.Context(), in, memory.New(v, nil), policy, rep)
			if err != nil {
				return uncheckedError("%v", err)
			}
			fmt.Fprintf(e.stderr, "%d events: %d clean, %d marked, %d refused\n", rep.total(), rep.clean, rep.marked, rep.refused)
			if rep.marked+rep.refused > 0 {
				return errFound
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&policy.Strict, "strict", false, "refuse events that break a catalog rule instead of marking them")
	cmd.Flags().BoolVar(&policy.AllowCustom, "allow-custom", false, "accept actions that are not in the catalog (marked)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON result per line")
	cmd.Flags().StringSliceVar(&secretKeys, "secret-key", nil, "extra context key names to redact (repeatable)")
	return cmd
}

// validateStream appends each line of in to store as its own batch and
// reports the outcome.
func validateStream(ctx context.Context, in io.Reader, store trail.Store, p trail.Policy, rep *validateReport) error {
	r := bufio.NewReaderSize(in, 64<<10)
	for n := 1; ; n++ {
		line, tooLong, err := readLine(r, trail.MaxEventBytes)
		if errors.Is(err, io.EOF) && len(line) == 0 && !tooLong {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading line %d: %w", n, err)
		}
		switch {
		case tooLong:
			rep.refuse(n, trail.Invalid(fmt.Sprintf("line is longer than %d bytes", trail.MaxEventBytes)))
		case len(bytes.TrimSpace(line)) == 0:
			// blank lines are allowed and not counted
		default:
			ev, perr := trail.ParseEvent(line)
			if perr != nil {
				rep.refuse(n, perr)
				break
			}
			res, aerr := store.Append(ctx, "validate", []*trail.Event{ev}, trail.AppendOptions{Policy: p})
			if aerr != nil {
				if trail.ErrorCode(aerr) != trail.EINVALID {
					return aerr
				}
				rep.refuse(n, aerr)
				break
			}
			rep.stored(n, res.Events[0])
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

// readLine reads one line (without its newline). A line longer than max is
// consumed whole and reported as tooLong instead of returned.
func readLine(r *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, isPrefix, err := r.ReadLine()
		if !tooLong {
			line = append(line, chunk...)
			if len(line) > max {
				tooLong, line = true, nil
			}
		}
		if err != nil || !isPrefix {
			return line, tooLong, err
		}
	}
}

// validateReport prints per-line results and counts them.
type validateReport struct {
	w                      io.Writer
	json                   bool
	clean, marked, refused int
}

func (r *validateReport) total() int { return r.clean + r.marked + r.refused }

type lineResult struct {
	Line       int                `json:"line"`
	Status     string             `json:"status"`
	Action     string             `json:"action,omitempty"`
	Message    string             `json:"message,omitempty"`
	Errors     []trail.FieldError `json:"errors,omitempty"`
	Violations []trail.Violation  `json:"violations,omitempty"`
	Redacted   []string           `json:"redacted,omitempty"`
}

func (r *validateReport) refuse(n int, err error) {
	r.refused++
	res := lineResult{Line: n, Status: "refused", Message: trail.ErrorMessage(err)}
	for _, f := range trail.ErrorFields(err) {
		f.Path = strings.TrimPrefix(f.Path, "[0].")
		res.Errors = append(res.Errors, f)
	}
	r.print(res)
}

func (r *validateReport) stored(n int, ev *trail.Event) {
	res := lineResult{Line: n, Status: "clean", Action: ev.Action, Violations: ev.Violations, Redacted: ev.Redacted}
	if len(ev.Violations)+len(ev.Redacted) > 0 {
		res.Status = "marked"
		r.marked++
	} else {
		r.clean++
	}
	r.print(res)
}

func (r *validateReport) print(res lineResult) {
	if r.json {
		b, _ := json.Marshal(res)
		fmt.Fprintf(r.w, "%s\n", b)
		return
	}
	if res.Action != "" {
		fmt.Fprintf(r.w, "line %d: %s (%s)\n", res.Line, res.Status, res.Action)
	} else {
		fmt.Fprintf(r.w, "line %d: %s: %s\n", res.Line, res.Status, res.Message)
	}
	for _, f := range res.Errors {
		fmt.Fprintf(r.w, "  error      %s: %s\n", f.Path, f.Message)
	}
	for _, v := range res.Violations {
		fmt.Fprintf(r.w, "  violation  %s: %s: %s\n", v.Path, v.Rule, v.Message)
	}
	for _, p := range res.Redacted {
		fmt.Fprintf(r.w, "  redacted   %s\n", p)
	}
}
