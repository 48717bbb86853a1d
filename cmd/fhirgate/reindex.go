package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fhirgate/fhirgate/internal/sqlstore"
)

func init() { register(newReindexCmd) }

func newReindexCmd() *cobra.Command {
	var dbURL, types string
	var force, status bool
	var batch int
	cmd := &cobra.Command{
		Use:   "reindex",
		Short: "Rebuild the search index after a registry change (resumable)",
		Long: `Rebuild the search index of the resource types whose index is stale: types
whose search parameters changed with a new fhirgate release, and resources
written before the index existed. Each batch commits with the position
reached, so an interrupted run continues where it stopped. The server may
keep running meanwhile: writes index themselves.

--db (or FHIRGATE_DB) names the database, as for serve.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := envDefaults(cmd.Flags(), map[string]string{"db": "FHIRGATE_DB"}); err != nil {
				return err
			}
			if dbURL == "" {
				return &exitError{code: 2, err: errorf("--db is required: sqlite:PATH or postgres://...")}
			}
			st, err := sqlstore.Open(cmd.Context(), dbURL, sqlstore.Options{})
			if err != nil {
				return errorf("open database: %w", err)
			}
			defer st.Close()
			out := cmd.OutOrStdout()
			if status {
				return printIndexStatus(cmd, st, out)
			}
			opts := sqlstore.ReindexOptions{Force: force, Batch: batch}
			if types != "" {
				opts.Types = strings.Split(types, ",")
			}
			last := time.Now()
			opts.Progress = func(typ string, done, _ int64) {
				if time.Since(last) >= 2*time.Second {
					fmt.Fprintf(out, "reindex: %s: %d resources\n", typ, done)
					last = time.Now()
				}
			}
			start := time.Now()
			res, err := st.Reindex(cmd.Context(), opts)
			if err != nil {
				return errorf("%w (run reindex again to resume)", err)
			}
			if len(res.Types) == 0 {
				fmt.Fprintln(out, "reindex: the search index is current; nothing to do")
				return nil
			}
			fmt.Fprintf(out, "reindex: rebuilt %d resources of %s in %s\n", res.Resources,
				strings.Join(res.Types, ", "), time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dbURL, "db", "", "database: sqlite:PATH or postgres://user:pass@host/db")
	f.StringVar(&types, "type", "", "comma-separated resource types to rebuild (default: every stale type)")
	f.BoolVar(&force, "force", false, "rebuild even when the index is current")
	f.BoolVar(&status, "status", false, "print which types are stale and exit")
	f.IntVar(&batch, "batch", 500, "resources per transaction")
	return cmd
}

func printIndexStatus(cmd *cobra.Command, st *sqlstore.Store, out io.Writer) error {
	states, err := st.IndexStates(cmd.Context())
	if err != nil {
		return err
	}
	stale := 0
	for _, s := range states {
		if s.Current {
			continue
		}
		stale++
		note := "stale"
		if s.Resumable {
			note = fmt.Sprintf("rebuild interrupted after rid %d (resumes)", s.Cursor)
		}
		fmt.Fprintf(out, "%s\t%s\n", s.Type, note)
	}
	if stale == 0 {
		fmt.Fprintln(out, "the search index is current")
	}
	return nil
}
