// Command fhirgate is a FHIR R4 server with a built-in SMART Backend Services
// authorization server, and the command line that its clients use.
//
// Subcommands live one per file; each registers itself in an init function
// with register, so adding a command never edits this file.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// commands are the subcommand constructors registered by the files of this
// package.
var commands []func() *cobra.Command

// register adds a subcommand constructor.
func register(c func() *cobra.Command) { commands = append(commands, c) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "fhirgate",
		Short:         "FHIR R4 server with a SMART Backend Services authorization server",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, c := range commands {
		root.AddCommand(c())
	}
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fhirgate: "+oneLine(err))
		os.Exit(exitCode(err))
	}
}

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// oneLine folds an error message onto one line: the contract promises a
// one-line message on stderr for every failure.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// errorf is fmt.Errorf, for messages that end up on stderr.
func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
