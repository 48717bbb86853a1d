package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func init() { register(newTokenCmd) }

// newTokenCmd builds `fhirgate token`: one SMART Backend Services token
// request, whose response is printed.
func newTokenCmd() *cobra.Command {
	var cf *clientFlags
	cmd := &cobra.Command{
		Use:   "token --server BASE --client-id ID --key private.pem [--kid KID] --scope \"...\"",
		Short: "Get an access token with the SMART Backend Services client_credentials grant and print the response",
		Long: `Get an access token from a SMART Backend Services authorization server and
print the token response JSON (access_token, token_type, expires_in, scope).

BASE is a FHIR base URL; the token endpoint is found through
BASE/.well-known/smart-configuration. The client authenticates with a JWT
signed by --key (private_key_jwt, RFC 7523): iss and sub are --client-id,
aud is the token endpoint, exp is four minutes ahead, jti is new each time.

--server, --client-id and --key may also come from FHIRGATE_SERVER,
FHIRGATE_CLIENT_ID and FHIRGATE_KEY.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := cf.tokenSource(cmd)
			if err != nil {
				return err
			}
			resp, err := ts.Refresh(cmd.Context())
			if err != nil {
				return cf.explain(err)
			}
			var out bytes.Buffer
			if err := json.Indent(&out, resp.Raw, "", "  "); err != nil {
				return fmt.Errorf("token: the server's response is not JSON: %w", err)
			}
			out.WriteByte('\n')
			_, err = cmd.OutOrStdout().Write(out.Bytes())
			return err
		},
	}
	cf = addClientFlags(cmd, "token")
	return cmd
}
