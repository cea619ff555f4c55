package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/authz/signing"
)

// headerFlags collects repeated -H "Name: value" flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

func (h headerFlags) parse() ([][2]string, error) {
	var out [][2]string
	for i, v := range h {
		name, value, ok := strings.Cut(v, ":")
		if !ok || strings.TrimSpace(name) == "" {
			// Not quoted back: the value may be a secret (an AppCode, a token).
			return nil, fmt.Errorf("-H #%d is not \"Name: value\"", i+1)
		}
		out = append(out, [2]string{strings.TrimSpace(name), strings.TrimSpace(value)})
	}
	return out, nil
}

// sign signs a request from flags and prints the headers to send, or a curl line.
func sign(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	appKey := fs.String("app-key", "", "the credential's appKey (required)")
	secretFile := fs.String("app-secret-file", "", "file holding the appSecret (or set PORTCULLIS_APP_SECRET; avoid putting secrets on a command line)")
	method := fs.String("method", "GET", "HTTP method")
	rawURL := fs.String("url", "", "full request URL, e.g. https://api.example.com/orders?limit=10 (required)")
	var headers headerFlags
	fs.Var(&headers, "H", "extra header to send and sign, \"Name: value\" (repeatable)")
	data := fs.String("data", "", "request body")
	dataFile := fs.String("data-file", "", "file holding the request body")
	unsigned := fs.Bool("unsigned-payload", false, "do not sign the body (X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD; the binding must allow it)")
	signHost := fs.Bool("sign-host", true, "include the host header in the signature")
	date := fs.String("date", "", "X-Sdk-Date to use (YYYYMMDDTHHMMSSZ; default now)")
	curl := fs.Bool("curl", false, "print a ready curl command line instead of the headers")
	connect := fs.String("connect", "", "with --curl: send the request to this HOST:PORT instead of the URL's host (curl --connect-to), e.g. a local Portcullis")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	secret := os.Getenv("PORTCULLIS_APP_SECRET")
	if *secretFile != "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			return err
		}
		secret = strings.TrimRight(string(b), "\r\n")
	}
	if *appKey == "" || *rawURL == "" || secret == "" {
		return errors.New("sign needs --app-key, --url and the secret (--app-secret-file or PORTCULLIS_APP_SECRET)")
	}
	u, err := url.Parse(*rawURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--url %q is not an absolute URL", *rawURL)
	}
	body := []byte(*data)
	if *dataFile != "" {
		if body, err = os.ReadFile(*dataFile); err != nil {
			return err
		}
	}
	extra, err := headers.parse()
	if err != nil {
		return err
	}
	if *date == "" {
		*date = time.Now().UTC().Format(signing.DateFormat)
	}
	send := [][2]string{{"X-Sdk-Date", *date}}
	if *unsigned {
		send = append(send, [2]string{"X-Sdk-Content-Sha256", signing.UnsignedPayload})
	}
	send = append(send, extra...)
	lookup := map[string]string{}
	signed := []string{}
	for _, h := range send {
		n := strings.ToLower(h[0])
		lookup[n] = h[1]
		if !slices.Contains(signed, n) {
			signed = append(signed, n)
		}
	}
	if *signHost {
		lookup["host"] = u.Host
		signed = append(signed, "host")
	}
	slices.Sort(signed)
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	auth, err := signing.Sign([]byte(secret), *appKey, signing.Request{
		Method: strings.ToUpper(*method), Path: path, Query: u.RawQuery, Host: u.Host,
		Header:    func(n string) (string, bool) { v, ok := lookup[n]; return v, ok },
		Body:      body,
		BodyKnown: true,
	}, signed)
	if err != nil {
		return err
	}
	send = append(send, [2]string{"Authorization", auth})
	if !*curl {
		for _, h := range send {
			fmt.Fprintf(out, "%s: %s\n", h[0], h[1])
		}
		return nil
	}
	line := []string{"curl", "-s", "-X", shellQuote(strings.ToUpper(*method))}
	for _, h := range send {
		line = append(line, "-H", shellQuote(h[0]+": "+h[1]))
	}
	if len(body) > 0 {
		line = append(line, "--data-binary", shellQuote(string(body)))
	}
	if *connect != "" {
		line = append(line, "--connect-to", shellQuote("::"+*connect))
	}
	line = append(line, "-i", shellQuote(*rawURL))
	fmt.Fprintln(out, strings.Join(line, " "))
	return nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
