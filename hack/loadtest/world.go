package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// kind is what a generated binding asks for; binding i has kind i % numKinds.
type kind int

const (
	kindTwoFactor         kind = iota // AppCode + authz-cached
	kindSignature                     // signed requests only
	kindAppCode                       // AppCode only
	kindTwoFactorUncached             // AppCode + authz-uncached (requests carry unique identities)
	kindAnonymous                     // anonymous: true
	kindTwoFactorFailOpen             // AppCode + authz-open (failurePolicy: Allow), the soak's fault routes
	numKinds
)

// paths of each kind's route; a request goes to <path>/<n>.
var kindPath = [numKinds]string{"/orders", "/payments", "/catalog", "/orders", "/public", "/orders"}

const namespace = "load"

// world is a generated policy: nb bindings and nc credentials; binding i binds credentials
// i, i+nb, i+2nb, ... so every credential is bound to exactly one binding.
type world struct {
	name string
	nb   int
	nc   int
}

var worlds = map[string]world{
	"small": {name: "small", nb: 10, nc: 100},
	"large": {name: "large", nb: 10000, nc: 100000},
}

func (w world) kindOf(b int) kind   { return kind(b % int(numKinds)) }
func (w world) host(b int) string   { return fmt.Sprintf("b%05d.load.example.com", b) }
func (w world) credsPer() int       { return w.nc / w.nb }
func (w world) cred(b, k int) int   { return b + k*w.nb }
func credName(c int) string         { return fmt.Sprintf("c-%06d", c) }
func appKey(c int) string           { return fmt.Sprintf("lk-%06d", c) }
func appSecret(c int) string        { return fmt.Sprintf("secret-%06d-0123456789abcdef", c) }
func appCode(c int) string          { return fmt.Sprintf("LOADCODE-%06d-%s", c, strings.Repeat("Q", 32)) }
func credentialHeader(c int) string { return namespace + "/" + credName(c) }

func (w world) bindingsOfKind(k kind) []int {
	var out []int
	for b := int(k); b < w.nb; b += int(numKinds) {
		out = append(out, b)
	}
	return out
}

// write writes the world as YAML files into dir; authorizerURL is the local authorizer.
func (w world) write(dir, authorizerURL string) error {
	files := []struct {
		name string
		gen  func(*bufio.Writer)
	}{
		{"00-secrets.yaml", func(out *bufio.Writer) {
			for c := 0; c < w.nc; c++ {
				fmt.Fprintf(out, "---\napiVersion: v1\nkind: Secret\nmetadata: {name: k-%06d, namespace: %s, labels: {auth.portcullis.dev/credential: \"true\"}}\n"+
					"stringData: {appKey: %s, appSecret: %s, appCodes: %s}\n", c, namespace, appKey(c), appSecret(c), appCode(c))
			}
		}},
		{"10-credentials.yaml", func(out *bufio.Writer) {
			for c := 0; c < w.nc; c++ {
				fmt.Fprintf(out, "---\napiVersion: auth.portcullis.dev/v1alpha1\nkind: Credential\nmetadata: {name: %s, namespace: %s, labels: {tier: t%d}}\n"+
					"spec: {secretRef: {name: k-%06d}, metadata: {tier: t%d}}\n", credName(c), namespace, c%3, c, c%3)
			}
		}},
		{"20-authorizers.yaml", func(out *bufio.Writer) {
			for _, a := range []struct{ name, cache, extra string }{
				{"authz-cached", "{ttl: 300s, maxEntries: 100000}", "timeout: 1s"},
				{"authz-uncached", "{ttl: 300s, maxEntries: 10000}", "timeout: 1s"},
				{"authz-open", "{ttl: 30s, maxEntries: 10000}", "timeout: 200ms\n  failurePolicy: Allow"},
			} {
				fmt.Fprintf(out, "---\napiVersion: auth.portcullis.dev/v1alpha1\nkind: CustomAuthorizer\nmetadata: {name: %s, namespace: %s}\nspec:\n"+
					"  url: %s\n  identitySources: [{in: Header, name: x-user-token}]\n  cache: %s\n  %s\n  userData: loadtest\n",
					a.name, namespace, authorizerURL, a.cache, a.extra)
			}
		}},
		{"30-bindings.yaml", func(out *bufio.Writer) {
			for b := 0; b < w.nb; b++ {
				k := w.kindOf(b)
				fmt.Fprintf(out, "---\napiVersion: auth.portcullis.dev/v1alpha1\nkind: APIBinding\nmetadata: {name: b-%05d, namespace: %s}\nspec:\n  hosts: [%s]\n",
					b, namespace, w.host(b))
				fmt.Fprintf(out, "  routes: [{path: %s, match: PathPrefix, methods: [GET, POST]}, {path: /v2%s, match: PathPrefix}]\n", kindPath[k], kindPath[k])
				var creds []string
				for i := 0; i < w.credsPer(); i++ {
					creds = append(creds, credName(w.cred(b, i)))
				}
				list := strings.Join(creds, ", ")
				switch k {
				case kindTwoFactor, kindTwoFactorUncached, kindTwoFactorFailOpen:
					az := map[kind]string{kindTwoFactor: "authz-cached", kindTwoFactorUncached: "authz-uncached", kindTwoFactorFailOpen: "authz-open"}[k]
					fmt.Fprintf(out, "  app: {methods: [AppCode], credentials: [%s]}\n  customAuthorizer: {name: %s}\n"+
						"  upstream: {contextHeaderPrefix: x-auth-, contextHeaders: [{context: user, header: x-user-id}]}\n", list, az)
				case kindSignature:
					fmt.Fprintf(out, "  app: {methods: [Signature], credentials: [%s]}\n", list)
				case kindAppCode:
					fmt.Fprintf(out, "  app: {methods: [AppCode], credentials: [%s]}\n", list)
				case kindAnonymous:
					fmt.Fprintf(out, "  anonymous: true\n")
				}
			}
		}},
	}
	for _, f := range files {
		fh, err := os.Create(filepath.Join(dir, f.name))
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(fh, 1<<20)
		f.gen(bw)
		if err := bw.Flush(); err != nil {
			fh.Close()
			return fmt.Errorf("write %s: %w", f.name, err)
		}
		if err := fh.Close(); err != nil {
			return err
		}
	}
	return nil
}
