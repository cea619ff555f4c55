package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/controllers"
)

// fixedAnswer is a second factor that always answers the same (check --authorizer-answer).
type fixedAnswer bool

func (a fixedAnswer) Authorize(context.Context, authorizer.Call) (authorizer.Result, error) {
	return authorizer.Result{Allow: bool(a), Context: []authorizer.KV{{Key: "user", Value: "portcullis-check"}}}, nil
}

// check decides one request against a directory of manifests and prints why. It reports
// whether the request was allowed.
func check(args []string, out io.Writer) (bool, error) {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	dir := fs.String("files", "config/samples", "directory of manifests (the three Portcullis kinds and labelled Secrets)")
	method := fs.String("method", "GET", "HTTP method")
	rawURL := fs.String("url", "", "full request URL, e.g. https://api.example.com/orders?test=demo (required)")
	var headers headerFlags
	fs.Var(&headers, "H", "request header \"Name: value\" (repeatable); paste the output of `portcullis sign` here")
	data := fs.String("data", "", "request body")
	source := fs.String("source-ip", "127.0.0.1", "client address, for allowedCIDRs")
	answer := fs.String("authorizer-answer", "", "allow or deny: answer for the custom authorizer instead of calling it")
	maxSkew := fs.Duration("max-clock-skew", 15*time.Minute, "as serve --max-clock-skew")
	describe := fs.Bool("describe", false, "also print the compiled policy")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, err
	}
	u, err := url.Parse(*rawURL)
	if err != nil || u.Host == "" {
		return false, fmt.Errorf("--url %q is not an absolute URL", *rawURL)
	}
	src, err := netip.ParseAddr(*source)
	if err != nil {
		return false, fmt.Errorf("--source-ip: %w", err)
	}
	hs, err := headers.parse()
	if err != nil {
		return false, err
	}
	objs, err := controllers.LoadDir(*dir)
	if err != nil {
		return false, err
	}
	var warnings []string
	log := funcr.New(func(_, args string) { warnings = append(warnings, args) }, funcr.Options{})
	in := compile.NewInputs()
	in.Now = time.Now()
	for _, o := range controllers.DropUnlabelledSecrets(objs, logr.Logger(log)) {
		in.Set(o)
	}
	snap, statuses := compile.Build(in, nil)
	for _, w := range warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
	for st := range statuses.All() {
		for _, c := range st.Conditions {
			if c.Status != "True" {
				fmt.Fprintf(out, "warning: %s: %s=%s %s: %s\n", st.Key, c.Type, c.Status, c.Reason, c.Message)
				break
			}
		}
	}
	if *describe {
		fmt.Fprintf(out, "--- policy\n%s---\n", snap.Describe())
	}

	var second engine.SecondFactor = authorizer.New(authorizer.Options{})
	switch *answer {
	case "":
	case "allow", "deny":
		second = fixedAnswer(*answer == "allow")
	default:
		return false, fmt.Errorf("--authorizer-answer must be allow or deny, not %q", *answer)
	}
	eng := &engine.Engine{Snapshot: func() *compile.Snapshot { return snap }, Authorizer: second, MaxClockSkew: *maxSkew}
	req := engine.Request{
		Method: strings.ToUpper(*method), Authority: u.Host, Target: u.RequestURI(),
		Body: []byte(*data), BodyKnown: true, Source: src,
	}
	for _, h := range hs {
		req.Headers = append(req.Headers, engine.Header{Name: strings.ToLower(h[0]), Value: h[1]})
	}
	if *data != "" {
		req.Headers = append(req.Headers, engine.Header{Name: "content-length", Value: fmt.Sprint(len(*data))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Second)
	defer cancel()
	d := eng.Decide(ctx, &req)

	if d.Allowed() {
		fmt.Fprintln(out, "decision: ALLOW (200)")
	} else {
		fmt.Fprintf(out, "decision: DENY %d %s: %s\n", d.Status(), d.Code, d.Message)
	}
	if r := d.Route; r != nil {
		fmt.Fprintf(out, "route:    %s %s [%s] of APIBinding %s (route #%d)\n", r.Match, r.Path, r.Methods, r.Binding.Ref, r.Index)
	} else {
		fmt.Fprintln(out, "route:    none")
	}
	cred := ""
	if d.Credential != nil {
		cred = " (Credential " + d.Credential.Ref + ", appKey " + d.Credential.AppKey + ")"
	}
	fmt.Fprintf(out, "app credential:    %s%s\n", d.App, cred)
	extra := ""
	if *answer != "" && d.Custom == engine.FactorPassed {
		extra = " (answer given by --authorizer-answer)"
	}
	if d.Degraded {
		extra += " (degraded: the authorizer was unreachable and failurePolicy is Allow)"
	}
	fmt.Fprintf(out, "custom authorizer: %s%s\n", d.Custom, extra)
	if d.Allowed() {
		for _, h := range d.Upstream {
			fmt.Fprintf(out, "upstream header:   %s: %s\n", h.Name, h.Value)
		}
		fmt.Fprintf(out, "removed headers:   %s, and every header starting with %s\n", strings.Join(d.Remove, ", "), strings.Join(d.RemovePrefixes, " or "))
	} else {
		fmt.Fprintf(out, "response body:     %s\n", d.Body())
	}
	return d.Allowed(), nil
}
