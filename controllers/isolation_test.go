package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	authzclient "github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/authz/signing"
)

// decide asks the engine over the published snapshot; it returns "ALLOW" or the error code,
// and the binding that decided.
func decide(method, host, target string, headers ...engine.Header) (string, string) {
	e := &engine.Engine{Snapshot: policy.Snapshot, Authorizer: authzclient.New(authzclient.Options{})}
	d := e.Decide(context.Background(), &engine.Request{Method: method, Authority: host, Target: target, Headers: headers, BodyKnown: true})
	by := ""
	if d.Route != nil {
		by = d.Route.Binding.Ref
	}
	if d.Allowed() {
		return "ALLOW", by
	}
	return d.Code.String(), by
}

func appCode(code string) engine.Header { return engine.Header{Name: "x-app-code", Value: code} }

// signed returns the headers of a GET signed with appKey and secret.
func signed(t *testing.T, appKey, secret, host, target string) []engine.Header {
	t.Helper()
	date := time.Now().UTC().Format(signing.DateFormat)
	h := map[string]string{"x-sdk-date": date}
	auth, err := signing.Sign([]byte(secret), appKey, signing.Request{
		Method: "GET", Path: target, Host: host, BodyKnown: true,
		Header: func(n string) (string, bool) { v, ok := h[n]; return v, ok },
	}, []string{"x-sdk-date"})
	if err != nil {
		t.Fatal(err)
	}
	return []engine.Header{{Name: "x-sdk-date", Value: date}, {Name: "authorization", Value: auth}}
}

type decisionCase struct {
	name    string
	method  string // GET when empty
	path    string
	headers []engine.Header
	want    string // ALLOW or an error code
	by      string // the binding that must decide
}

func wantDecisions(t *testing.T, host string, cases []decisionCase) {
	t.Helper()
	for _, c := range cases {
		method := c.method
		if method == "" {
			method = "GET"
		}
		eventually(t, c.name, func() error {
			if got, by := decide(method, host, c.path, c.headers...); got != c.want || by != c.by {
				return fmt.Errorf("%s %s: %s by %q, want %s by %q", method, c.path, got, by, c.want, c.by)
			}
			return nil
		})
	}
}

// codeFor is an AppCode (32..180 characters) unique to a namespace and a name.
func codeFor(ns, name string) string { return ns + "-" + name + "-" + strings.Repeat("c", 32) }

// TestNamespaceIsolation: a binding only ever reaches the Credentials and CustomAuthorizer of
// its own namespace, by name or by label selector; a reference to another namespace's
// object is unresolved (its routes deny, never falling through to a broader route), and
// another namespace's credential is not bound.
func TestNamespaceIsolation(t *testing.T) {
	a, b := namespace(t), namespace(t)
	host := a + ".iso.example.com"
	gold := map[string]string{"tier": "gold"}
	cred := func(ns, name string) (*authv1alpha1.Credential, string) {
		c := credential(ns, name, name)
		c.Labels = gold
		code := codeFor(ns, name)
		create(t, secret(ns, name, map[string]string{"appKey": ns + "-" + name, "appCodes": code}), c)
		return c, code
	}
	credA, codeA := cred(a, "app")
	credB, codeB := cred(b, "app")
	_, codeRemote := cred(b, "remote") // exists only in b
	azB := authorizer(b, "remote-check")
	create(t, azB)

	byCode := func(s *authv1alpha1.APIBindingSpec, creds ...string) {
		s.App = &authv1alpha1.AppAuth{Methods: []authv1alpha1.AppAuthMethod{authv1alpha1.AppAuthAppCode}, Credentials: creds}
	}
	open := binding(a, "open", host, "/", func(s *authv1alpha1.APIBindingSpec) { s.Anonymous = true })
	byName := binding(a, "by-name", host, "/by-name", func(s *authv1alpha1.APIBindingSpec) { byCode(s, "remote") })
	qualified := binding(a, "qualified", host, "/qualified", func(s *authv1alpha1.APIBindingSpec) { byCode(s, b+"/remote") })
	remoteAuthz := binding(a, "remote-authz", host, "/authz", func(s *authv1alpha1.APIBindingSpec) {
		s.CustomAuthorizer = &authv1alpha1.LocalObjectReference{Name: "remote-check"}
	})
	selector := binding(a, "selector", host, "/selector", func(s *authv1alpha1.APIBindingSpec) {
		byCode(s)
		s.App.CredentialSelector = &metav1.LabelSelector{MatchLabels: gold}
	})
	sameName := binding(a, "same-name", host, "/same-name", func(s *authv1alpha1.APIBindingSpec) { byCode(s, "app") })
	create(t, open, byName, qualified, remoteAuthz, selector, sameName)

	conds := []struct {
		obj         client.Object
		typ, reason string
		status      metav1.ConditionStatus
	}{
		{obj: byName, typ: authv1alpha1.ConditionResolvedRefs, status: metav1.ConditionFalse, reason: authv1alpha1.ReasonCredentialNotFound},
		{obj: byName, typ: authv1alpha1.ConditionReady, status: metav1.ConditionFalse, reason: authv1alpha1.ReasonCredentialNotFound},
		{obj: qualified, typ: authv1alpha1.ConditionResolvedRefs, status: metav1.ConditionFalse, reason: authv1alpha1.ReasonCredentialNotFound},
		{obj: remoteAuthz, typ: authv1alpha1.ConditionResolvedRefs, status: metav1.ConditionFalse, reason: authv1alpha1.ReasonAuthorizerNotFound},
		{obj: remoteAuthz, typ: authv1alpha1.ConditionReady, status: metav1.ConditionFalse, reason: authv1alpha1.ReasonAuthorizerNotFound},
		{obj: selector, typ: authv1alpha1.ConditionReady, status: metav1.ConditionTrue, reason: authv1alpha1.ReasonValid},
		{obj: sameName, typ: authv1alpha1.ConditionReady, status: metav1.ConditionTrue, reason: authv1alpha1.ReasonValid},
		{obj: open, typ: authv1alpha1.ConditionReady, status: metav1.ConditionTrue, reason: authv1alpha1.ReasonValid},
	}
	for _, c := range conds {
		wantCondition(t, c.obj, c.typ, c.status, c.reason)
	}
	// The CustomAuthorizer of b is fine in b; it is only out of a's reach.
	wantCondition(t, azB, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonValid)

	none := []engine.Header(nil)
	tok := engine.Header{Name: "token", Value: "t"}
	wantDecisions(t, host, []decisionCase{
		{"the anonymous route is open", "", "/elsewhere", none, "ALLOW", a + "/open"},
		{"by name: b's credential", "", "/by-name", []engine.Header{appCode(codeRemote)}, "AUTHORIZER_CONF_FAILURE", a + "/by-name"},
		{"by name: below the route", "", "/by-name/x", []engine.Header{appCode(codeRemote)}, "AUTHORIZER_CONF_FAILURE", a + "/by-name"},
		{"by name: a's credential", "", "/by-name", []engine.Header{appCode(codeA)}, "AUTHORIZER_CONF_FAILURE", a + "/by-name"},
		{"by name: nothing", "", "/by-name", none, "AUTHORIZER_CONF_FAILURE", a + "/by-name"},
		{"ns/name reference", "", "/qualified", []engine.Header{appCode(codeRemote)}, "AUTHORIZER_CONF_FAILURE", a + "/qualified"},
		{"b's authorizer", "", "/authz", []engine.Header{tok}, "AUTHORIZER_CONF_FAILURE", a + "/remote-authz"},
		{"selector: b's gold credential", "", "/selector", []engine.Header{appCode(codeB)}, "UNAUTHORIZED", a + "/selector"},
		{"selector: b's other gold credential", "", "/selector", []engine.Header{appCode(codeRemote)}, "UNAUTHORIZED", a + "/selector"},
		{"selector: a's gold credential", "", "/selector", []engine.Header{appCode(codeA)}, "ALLOW", a + "/selector"},
		{"same name: b's app", "", "/same-name", []engine.Header{appCode(codeB)}, "UNAUTHORIZED", a + "/same-name"},
		{"same name: a's app", "", "/same-name", []engine.Header{appCode(codeA)}, "ALLOW", a + "/same-name"},
	})

	// Counted where they are bound: a's app by the selector and by name, b's by nothing.
	for _, c := range []struct {
		cred *authv1alpha1.Credential
		want int32
	}{{credA, 2}, {credB, 0}} {
		eventually(t, "boundBindings of "+c.cred.Namespace+"/"+c.cred.Name, func() error {
			got := &authv1alpha1.Credential{}
			if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(c.cred), got); err != nil {
				return err
			}
			if got.Status.BoundBindings != c.want {
				return fmt.Errorf("bound %d, want %d", got.Status.BoundBindings, c.want)
			}
			return nil
		})
	}
}

// after waits until objects created now are strictly newer than obj (creation timestamps
// have one-second resolution).
func after(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(obj.GetCreationTimestamp().Add(time.Second + 50*time.Millisecond)))
}

// TestRouteTakeover: a namespace cannot take over another namespace's route on a shared
// host. An equal claim made later gets RouteConflict and changes no decision; DESIGN.md §3
// lets a different claim (an Exact path, a longer prefix, a route naming methods) win for
// the requests it matches better; deleting the owner hands the route to the conflicting
// binding. An appKey claimed later in another namespace is refused the same way.
func TestRouteTakeover(t *testing.T) {
	a, b := namespace(t), namespace(t)
	host := "shared-" + a + ".example.com"
	secretA, secretB := a+"-secret-0123456789", b+"-secret-0123456789"
	codeA, codeB := codeFor(a, "app"), codeFor(b, "app")
	twoWays := func(s *authv1alpha1.APIBindingSpec) {
		s.App = &authv1alpha1.AppAuth{Methods: []authv1alpha1.AppAuthMethod{authv1alpha1.AppAuthSignature, authv1alpha1.AppAuthAppCode}, Credentials: []string{"app"}}
	}
	create(t, secret(a, "app", map[string]string{"appKey": a + "-key", "appSecret": secretA, "appCodes": codeA}), credential(a, "app", "app"))
	owner := binding(a, "owner", host, "/p", twoWays)
	create(t, owner)
	wantCondition(t, owner, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonValid)
	after(t, owner)

	anon := func(s *authv1alpha1.APIBindingSpec) { s.Anonymous = true }
	taker := binding(b, "taker", host, "/p", twoWays)
	exact := binding(b, "exact", host, "/p/exact", anon)
	exact.Spec.Routes[0].Match = authv1alpha1.PathMatchExact
	deeper := binding(b, "deeper", host, "/p/deeper", anon)
	methods := binding(b, "methods", host, "/p", anon)
	methods.Spec.Routes[0].Methods = []authv1alpha1.HTTPMethod{"DELETE"}
	// b claims a's appKey with its own secret.
	squatter := credential(b, "squatter", "squat")
	create(t, secret(b, "app", map[string]string{"appKey": b + "-key", "appSecret": secretB, "appCodes": codeB}), credential(b, "app", "app"),
		secret(b, "squat", map[string]string{"appKey": a + "-key", "appSecret": b + "-squatter-0123456789"}), squatter,
		taker, exact, deeper, methods)

	wantCondition(t, taker, authv1alpha1.ConditionAccepted, metav1.ConditionFalse, authv1alpha1.ReasonRouteConflict)
	wantCondition(t, taker, authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonRouteConflict)
	wantCondition(t, owner, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonValid)
	for _, o := range []client.Object{exact, deeper, methods} {
		wantCondition(t, o, authv1alpha1.ConditionAccepted, metav1.ConditionTrue, authv1alpha1.ReasonAccepted)
	}
	wantCondition(t, squatter, authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonAppKeyConflict)

	ownerRef, takerRef := a+"/owner", b+"/taker"
	wantDecisions(t, host, []decisionCase{
		{"a's AppCode on a's route", "", "/p/x", []engine.Header{appCode(codeA)}, "ALLOW", ownerRef},
		{"b's AppCode on a's route", "", "/p/x", []engine.Header{appCode(codeB)}, "UNAUTHORIZED", ownerRef},
		{"b's AppCode on the path itself", "", "/p", []engine.Header{appCode(codeB)}, "UNAUTHORIZED", ownerRef},
		{"no credential", "", "/p/x", nil, "AUTH_HEADER_MISSING", ownerRef},
		{"a's signature", "", "/p/x", signed(t, a+"-key", secretA, host, "/p/x"), "ALLOW", ownerRef},
		{"b's secret under a's appKey", "", "/p/x", signed(t, a+"-key", b+"-squatter-0123456789", host, "/p/x"), "AUTH_FAILURE", ownerRef},
		{"b's own signature", "", "/p/x", signed(t, b+"-key", secretB, host, "/p/x"), "UNAUTHORIZED", ownerRef},
		// DESIGN.md §3: Exact before PathPrefix, longest prefix first, a method list first.
		{"b's Exact path under a's prefix", "", "/p/exact", nil, "ALLOW", b + "/exact"},
		{"below b's Exact path", "", "/p/exact/x", nil, "AUTH_HEADER_MISSING", ownerRef},
		{"b's longer prefix", "", "/p/deeper/x", nil, "ALLOW", b + "/deeper"},
		{"b's DELETE route", "DELETE", "/p/x", nil, "ALLOW", b + "/methods"},
		{"other methods stay a's", "POST", "/p/x", nil, "AUTH_HEADER_MISSING", ownerRef},
	})

	if err := k8s.Delete(context.Background(), owner); err != nil {
		t.Fatal(err)
	}
	wantCondition(t, taker, authv1alpha1.ConditionAccepted, metav1.ConditionTrue, authv1alpha1.ReasonAccepted)
	wantCondition(t, taker, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonValid)
	wantDecisions(t, host, []decisionCase{
		{"b's AppCode once a's binding is gone", "", "/p/x", []engine.Header{appCode(codeB)}, "ALLOW", takerRef},
		{"a's AppCode once a's binding is gone", "", "/p/x", []engine.Header{appCode(codeA)}, "UNAUTHORIZED", takerRef},
		{"b's Exact path still b's", "", "/p/exact", nil, "ALLOW", b + "/exact"},
	})
}
