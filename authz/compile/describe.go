package compile

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// Describe renders the snapshot as stable, readable text: every host table in match order,
// the credential indexes, the compiled bindings and authorizers, and every object's status.
// Golden tests and `portcullis check` print it.
func (s *Snapshot) Describe() string {
	var w strings.Builder
	describeTables(&w, "hosts", s.hosts, "")
	describeTables(&w, "wildcards", s.wildcards, "*.")

	w.WriteString("appKeys:\n")
	keys := collect(s.appKeys.owners, func(k string, c *Credential) string {
		if c == nil {
			return "" // claimed, but by no credential that may use it
		}
		return fmt.Sprintf("  %s: %s\n", k, c.Ref)
	})
	w.WriteString(strings.Join(keys, ""))
	w.WriteString("appCodes:\n")
	codes := collect(s.appCodes.owners, func(d [32]byte, c *Credential) string {
		if c == nil {
			return ""
		}
		return fmt.Sprintf("  sha256:%s…: %s\n", hex.EncodeToString(d[:6]), c.Ref)
	})
	w.WriteString(strings.Join(codes, ""))

	if s.st != nil {
		w.WriteString("authorizers:\n")
		w.WriteString(strings.Join(collect(s.st.authz, func(k types.NamespacedName, e *authzEntry) string {
			if e.a == nil {
				return fmt.Sprintf("  %s: not ready\n", k)
			}
			a := e.a
			var ids []string
			for _, i := range a.IdentitySources {
				ids = append(ids, strings.TrimSuffix(string(i.In)+":"+i.Name, ":"))
			}
			userData := strconv.Quote(a.UserData)
			if from := e.obj.Spec.UserDataFrom; from != nil {
				// A value read from a Secret is a secret: name where it comes from instead.
				userData = fmt.Sprintf("<Secret %s/%s key %s>", k.Namespace, from.SecretKeyRef.Name, from.SecretKeyRef.Key)
			}
			return fmt.Sprintf("  %s: url=%s ids=[%s] ttl=%s denyTTL=%s max=%d timeout=%s format=%s failOpen=%t sendBody=%t userData=%s\n",
				k, a.URL, strings.Join(ids, ","), a.TTL, a.DenyTTL, a.MaxEntries, a.Timeout, a.ResponseFormat, a.FailOpen, a.SendBody, userData)
		}), ""))
		w.WriteString("bindings:\n")
		w.WriteString(strings.Join(collect(s.st.binds, func(k types.NamespacedName, e *bindEntry) string {
			return fmt.Sprintf("  %s: %s\n", k, e.b.describe())
		}), ""))
	}
	w.WriteString("statuses:\n")
	for _, st := range s.Statuses() {
		fmt.Fprintf(&w, "  %s:", st.Key)
		if st.Key.Kind == KindCredential {
			fmt.Fprintf(&w, " appKey=%q bound=%d", st.AppKey, st.BoundBindings)
		}
		w.WriteString("\n")
		for _, c := range st.Conditions {
			fmt.Fprintf(&w, "    %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	return w.String()
}

func (b *Binding) describe() string {
	var parts []string
	if b.Anonymous {
		parts = append(parts, "anonymous")
	}
	if f := b.App; f != nil {
		var how []string
		if f.Signature {
			how = append(how, "Signature")
		}
		if f.AppCode {
			how = append(how, "AppCode")
		}
		app := fmt.Sprintf("app=%s creds=[%s]", strings.Join(how, "+"), strings.Join(f.names, ","))
		if f.selector != nil {
			app += fmt.Sprintf(" selector=%q", f.selector.String())
		}
		if f.AllowUnsignedPayload {
			app += " unsignedPayload"
		}
		parts = append(parts, app)
	}
	if b.Authorizer != nil {
		parts = append(parts, "authorizer="+b.Authorizer.Ref)
	}
	if b.ContextHeaderPrefix != "" {
		parts = append(parts, "contextPrefix="+b.ContextHeaderPrefix)
	}
	for _, h := range b.ContextHeaders {
		parts = append(parts, fmt.Sprintf("context[%s]->%s", h.Context, h.Header))
	}
	if b.Invalid != "" {
		parts = append(parts, fmt.Sprintf("DENY(%s)", b.Invalid))
	}
	return strings.Join(parts, " ")
}

func describeTables(w *strings.Builder, title string, m pmap[string, *HostTable], prefix string) {
	w.WriteString(title + ":\n")
	for _, line := range collect(m, func(k string, t *HostTable) string {
		var b strings.Builder
		fmt.Fprintf(&b, "  %s%s:\n", prefix, k)
		for _, r := range t.Routes() {
			fmt.Fprintf(&b, "    %s %s [%s] -> %s#%d", r.Match, r.Path, r.Methods, r.Binding.Ref, r.Index)
			if r.Binding.Invalid != "" {
				b.WriteString(" (deny)")
			}
			b.WriteString("\n")
		}
		return b.String()
	}) {
		w.WriteString(line)
	}
}

// Routes lists the table's routes in match order: Exact routes by path, then PathPrefix
// routes longest first; at one path, method-specific routes before the catch-all.
func (t *HostTable) Routes() []*Route {
	var out []*Route
	add := func(exact, longestFirst bool) {
		type pathSet struct {
			path string
			set  *routeSet
		}
		var paths []pathSet
		t.paths.each(exact, func(p string, s *routeSet) { paths = append(paths, pathSet{p, s}) })
		slices.SortFunc(paths, func(a, b pathSet) int {
			if longestFirst && len(a.path) != len(b.path) {
				return len(b.path) - len(a.path)
			}
			return cmp.Compare(a.path, b.path)
		})
		for _, p := range paths {
			out = append(out, p.set.byMethod...)
			if p.set.any != nil {
				out = append(out, p.set.any)
			}
		}
	}
	add(true, false)
	add(false, true)
	return out
}

func collect[K comparable, V any](m pmap[K, V], f func(K, V) string) []string {
	var out []string
	m.Range(func(k K, v V) bool { out = append(out, f(k, v)); return true })
	slices.Sort(out)
	return out
}
