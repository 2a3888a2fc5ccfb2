// Command trail is Trail's command-line tool and its service. This
// file only wires the parts together; each command lives in its own file.
//
// Exit codes: 0 success, 1 the command ran and found a problem (a refused or
// marked event, damage in the log), 2 a usage error, and, for the commands
// that check something (checkHelp), 3 when they could not check.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}))
}

// env is what a command may touch of the world: its streams and the
// directory relative file names are resolved against. Tests give each run its
// own.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	dir            string            // "" means the process's working directory
	vars           map[string]string // environment variables; nil means the process's
}

// lookupEnv reads an environment variable.
func (e *env) lookupEnv(name string) (string, bool) {
	if e.vars != nil {
		v, ok := e.vars[name]
		return v, ok
	}
	return os.LookupEnv(name)
}

// path resolves a file name given on the command line.
func (e *env) path(name string) string {
	if e.dir == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(e.dir, name)
}

// input opens the file a command reads: name, or standard input for "-".
// A file that cannot be opened is a usage error.
func (e *env) input(name string) (io.Reader, func(), error) {
	if name == "-" {
		return e.stdin, func() {}, nil
	}
	f, err := os.Open(e.path(name))
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	return f, func() { f.Close() }, nil
}

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error // printed to stderr when not nil
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

// The exit codes.
const (
	exitFound     = 1 // the command ran and found a problem: damage, a refused or marked event
	exitUsage     = 2 // the command was called wrong
	exitUnchecked = 3 // a check could not be made: nothing was found either way
)

// checkHelp ends the help of every command that checks something.
const checkHelp = `

Exit codes: 0 checked, nothing wrong; 1 damage found (a saved checkpoint the
log no longer extends included); 2 usage error; 3 could not check: the store
cannot be read, no checkpoint is signed by the trusted key (the key that did
sign is printed), or the tenant has no log.`

// usageError reports a usage error (exit 2).
func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// damageError reports damage a check found (exit 1).
func damageError(format string, args ...any) error {
	return &exitError{code: exitFound, err: fmt.Errorf(format, args...)}
}

// uncheckedError reports a check that could not be made (exit 3): the
// store could not be read, or nothing trusted vouches for what it holds.
func uncheckedError(format string, args ...any) error {
	return &exitError{code: exitUnchecked, err: fmt.Errorf("could not check: "+format, args...)}
}

// found reports that a command ran and found a problem (exit 1), having
// already said what it found.
var errFound = &exitError{code: exitFound}

// run runs the trail command line args and returns the exit code.
func run(args []string, e *env) int {
	root := newRootCmd(e)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(e.stderr, "trail:", ee.err)
		}
		return ee.code
	}
	// cobra's own errors are about flags and arguments: usage errors.
	fmt.Fprintln(e.stderr, "trail:", err)
	fmt.Fprintln(e.stderr, "Run 'trail --help' for usage.")
	return 2
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "trail",
		Short: "Trail is a tamper-evident audit trail",
		Long: `Trail records who did what, to what, when, from where and with what outcome,
validated against an action catalog, with secrets redacted before anything is
stored, in an append-only Merkle log that anyone with the verifier key can check.

Start with 'trail serve' (the HTTP API and the web UI at /ui/), or 'trail ingest'
and 'trail query' on the embedded database in ./trail-data.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// The store's flags have environment variables for every command, so
	// that trail keys or trail verify find the store trail serve uses.
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		return fromEnv(cmd, e, map[string]string{"data": "TRAIL_DATA", "postgres": "TRAIL_POSTGRES", "signing-key": "TRAIL_SIGNING_KEY",
			"witness-policy": "TRAIL_WITNESS_POLICY"})
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.AddCommand(newVersionCmd(e), newOperatorCmd(e), newActionsCmd(e), newValidateCmd(e), newIngestCmd(e), newQueryCmd(e),
		newServeCmd(e), newBenchCmd(e), newEraseCmd(e), newKeysCmd(e), newKeygenCmd(e), newVerifierCmd(e), newKeyCmd(e), newCheckpointCmd(e), newProveCmd(e), newVerifyCmd(e), newExportCmd(e),
		newRetentionCmd(e), newHoldsCmd(e), newSinksCmd(e), newRulesCmd(e))
	return root
}
