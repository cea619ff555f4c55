package v1alpha1_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
)

// accepted is the want of a row whose object the API server must store.
const accepted = ""

// validationCase is one row of a CRD validation table: a known-good object, changed by
// mutate (and raw), is created through the real API server.
type validationCase[O client.Object] struct {
	name string
	// mutate edits a fresh copy of the table's known-good object.
	mutate func(obj O)
	// raw edits the object's JSON form after mutate, for what the Go types cannot express:
	// a missing required field, an explicit empty list, a duration Go does not parse.
	raw func(obj map[string]any)
	// want is accepted, or a substring of the API server's error message.
	want string
	// check inspects an accepted object as read back from the API server (defaults applied).
	check func(t *testing.T, got O)
}

// runValidationCases creates every row's object in a fresh namespace and asserts the API
// server's answer.
func runValidationCases[O client.Object](t *testing.T, good func() O, cases []validationCase[O]) {
	t.Helper()
	requireEnvtest(t)
	ns := newNamespace(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			obj := good()
			obj.SetNamespace(ns)
			obj.SetName(fmt.Sprintf("case-%03d", i))
			if tc.mutate != nil {
				tc.mutate(obj)
			}
			u := toUnstructured(t, obj)
			if tc.raw != nil {
				tc.raw(u.Object)
			}

			err := k8sClient.Create(ctx, u)
			if tc.want != accepted {
				switch {
				case err == nil:
					t.Fatalf("object was accepted; want an error containing %q", tc.want)
				case !apierrors.IsInvalid(err):
					t.Fatalf("want an Invalid error containing %q, got %v", tc.want, err)
				case !strings.Contains(err.Error(), tc.want):
					t.Fatalf("error does not contain %q:\n%v", tc.want, err)
				}
				t.Logf("rejected as expected: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("want accepted, got: %v", err)
			}

			// Read back through the typed client: the stored object must decode into the
			// Go types, and defaults are visible.
			got := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(O)
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), got); err != nil {
				t.Fatalf("read back: %v", err)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

// newNamespace creates a namespace for one test and deletes it afterwards.
func newNamespace(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: strings.ToLower(strings.TrimPrefix(t.Name(), "Test")) + "-",
	}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := k8sClient.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

func toUnstructured(t *testing.T, obj client.Object) *unstructured.Unstructured {
	t.Helper()
	gvk, err := apiutil.GVKForObject(obj, k8sClient.Scheme())
	if err != nil {
		t.Fatalf("kind of %T: %v", obj, err)
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatalf("convert %T: %v", obj, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	return u
}

// set stores value at the dotted path (e.g. "spec.cache.ttl") of a JSON object.
func set(path string, value any) func(map[string]any) {
	return func(obj map[string]any) {
		fields := strings.Split(path, ".")
		if err := unstructured.SetNestedField(obj, value, fields...); err != nil {
			panic(fmt.Sprintf("set %s: %v", path, err))
		}
	}
}

// remove deletes the field at the dotted path of a JSON object.
func remove(path string) func(map[string]any) {
	return func(obj map[string]any) {
		unstructured.RemoveNestedField(obj, strings.Split(path, ".")...)
	}
}

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func ptr[T any](v T) *T { return &v }

// TestCredentialValidation proves the Credential CRD's schema and CEL rules.
func TestCredentialValidation(t *testing.T) {
	t.Parallel()
	good := func() *authv1alpha1.Credential {
		return &authv1alpha1.Credential{Spec: authv1alpha1.CredentialSpec{
			SecretRef: authv1alpha1.LocalObjectReference{Name: "mobile-app-keys"},
		}}
	}
	manyKeys := map[string]string{}
	for i := range 33 {
		manyKeys[fmt.Sprintf("k%02d", i)] = "v"
	}
	thirtyTwoKeys := map[string]string{}
	for i := range 32 {
		thirtyTwoKeys[fmt.Sprintf("k%02d", i)] = "v"
	}
	expires := metav1.NewTime(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))

	runValidationCases(t, good, []validationCase[*authv1alpha1.Credential]{
		{name: "minimal", want: accepted},
		{
			name: "valid with expiresAt, IPv4 and IPv6 CIDRs and metadata",
			mutate: func(c *authv1alpha1.Credential) {
				c.Spec.ExpiresAt = &expires
				c.Spec.AllowedCIDRs = []string{"10.0.0.0/8", "2001:db8::/32"}
				c.Spec.Metadata = map[string]string{"tier": "gold"}
				c.Spec.Disabled = true
			},
			want: accepted,
			check: func(t *testing.T, got *authv1alpha1.Credential) {
				if got.Spec.ExpiresAt == nil || !got.Spec.ExpiresAt.Equal(&expires) {
					t.Errorf("expiresAt = %v, want %v", got.Spec.ExpiresAt, expires)
				}
				if want := []string{"10.0.0.0/8", "2001:db8::/32"}; !slices.Equal(got.Spec.AllowedCIDRs, want) {
					t.Errorf("allowedCIDRs = %v, want %v", got.Spec.AllowedCIDRs, want)
				}
				if !got.Spec.Disabled || got.Spec.Metadata["tier"] != "gold" {
					t.Errorf("spec = %+v, want disabled and metadata tier=gold", got.Spec)
				}
			},
		},
		{
			name: "missing secretRef",
			raw:  remove("spec.secretRef"),
			want: "spec.secretRef: Required value",
		},
		{
			name: "missing secretRef.name",
			raw:  remove("spec.secretRef.name"),
			want: "spec.secretRef.name: Required value",
		},
		{
			name:   "empty secretRef.name",
			mutate: func(c *authv1alpha1.Credential) { c.Spec.SecretRef.Name = "" },
			want:   "spec.secretRef.name in body should be at least 1 chars long",
		},
		{
			name:   "allowedCIDRs octet out of range",
			mutate: func(c *authv1alpha1.Credential) { c.Spec.AllowedCIDRs = []string{"10.0.0.300/8"} },
			want:   "allowedCIDRs entries must be CIDRs such as 10.0.0.0/8",
		},
		{
			name:   "allowedCIDRs not an address",
			mutate: func(c *authv1alpha1.Credential) { c.Spec.AllowedCIDRs = []string{"10.0.0.0/8", "foo"} },
			want:   "allowedCIDRs entries must be CIDRs such as 10.0.0.0/8",
		},
		{
			name:   "allowedCIDRs address without prefix length",
			mutate: func(c *authv1alpha1.Credential) { c.Spec.AllowedCIDRs = []string{"10.0.0.1"} },
			want:   "allowedCIDRs entries must be CIDRs such as 10.0.0.0/8",
		},
		{
			name:   "allowedCIDRs duplicate",
			mutate: func(c *authv1alpha1.Credential) { c.Spec.AllowedCIDRs = []string{"10.0.0.0/8", "10.0.0.0/8"} },
			want:   `spec.allowedCIDRs[1]: Duplicate value: "10.0.0.0/8"`,
		},
		{
			name: "allowedCIDRs more than 32",
			mutate: func(c *authv1alpha1.Credential) {
				for i := range 33 {
					c.Spec.AllowedCIDRs = append(c.Spec.AllowedCIDRs, fmt.Sprintf("10.%d.0.0/16", i))
				}
			},
			want: "spec.allowedCIDRs: Too many: 33: must have at most 32 items",
		},
		{
			name:   "metadata with 32 keys",
			mutate: func(c *authv1alpha1.Credential) { c.Spec.Metadata = thirtyTwoKeys },
			want:   accepted,
		},
		{
			name:   "metadata with 33 keys",
			mutate: func(c *authv1alpha1.Credential) { c.Spec.Metadata = manyKeys },
			want:   "spec.metadata: Too many: 33: must have at most 32 items",
		},
		{
			name: "metadata key of 63 characters and value of 256",
			mutate: func(c *authv1alpha1.Credential) {
				c.Spec.Metadata = map[string]string{strings.Repeat("k", 63): strings.Repeat("v", 256)}
			},
			want: accepted,
		},
		{
			name:   "metadata key too long",
			mutate: func(c *authv1alpha1.Credential) { c.Spec.Metadata = map[string]string{strings.Repeat("k", 64): "v"} },
			want:   "metadata keys are at most 63 and values at most 256 characters",
		},
		{
			name:   "metadata value too long",
			mutate: func(c *authv1alpha1.Credential) { c.Spec.Metadata = map[string]string{"k": strings.Repeat("v", 257)} },
			want:   "metadata keys are at most 63 and values at most 256 characters",
		},
		{
			name: "expiresAt not a timestamp",
			raw:  set("spec.expiresAt", "next year"),
			want: `spec.expiresAt: Invalid value: "next year"`,
		},
	})
}

// TestCustomAuthorizerValidation proves the CustomAuthorizer CRD's schema, CEL rules and
// defaults.
func TestCustomAuthorizerValidation(t *testing.T) {
	t.Parallel()
	good := func() *authv1alpha1.CustomAuthorizer {
		return &authv1alpha1.CustomAuthorizer{Spec: authv1alpha1.CustomAuthorizerSpec{
			URL: "http://authz-fn.shop.svc.cluster.local:8080/verify",
			IdentitySources: []authv1alpha1.IdentitySource{
				{In: authv1alpha1.IdentityHeader, Name: "token"},
			},
		}}
	}
	header := func(name string) authv1alpha1.IdentitySource {
		return authv1alpha1.IdentitySource{In: authv1alpha1.IdentityHeader, Name: name}
	}
	query := func(name string) authv1alpha1.IdentitySource {
		return authv1alpha1.IdentitySource{In: authv1alpha1.IdentityQuery, Name: name}
	}
	cookie := func(name string) authv1alpha1.IdentitySource {
		return authv1alpha1.IdentitySource{In: authv1alpha1.IdentityCookie, Name: name}
	}
	method := authv1alpha1.IdentitySource{In: authv1alpha1.IdentityMethod}
	pathSource := authv1alpha1.IdentitySource{In: authv1alpha1.IdentityPath}
	sources := func(s ...authv1alpha1.IdentitySource) func(*authv1alpha1.CustomAuthorizer) {
		return func(a *authv1alpha1.CustomAuthorizer) { a.Spec.IdentitySources = s }
	}
	url := func(u string) func(*authv1alpha1.CustomAuthorizer) {
		return func(a *authv1alpha1.CustomAuthorizer) { a.Spec.URL = u }
	}
	cache := func(c authv1alpha1.AuthorizerCache) func(*authv1alpha1.CustomAuthorizer) {
		return func(a *authv1alpha1.CustomAuthorizer) { a.Spec.Cache = &c }
	}
	timeout := func(d time.Duration) func(*authv1alpha1.CustomAuthorizer) {
		return func(a *authv1alpha1.CustomAuthorizer) { a.Spec.Timeout = dur(d) }
	}
	const (
		urlMsg     = "url must be an absolute http or https URL with a host"
		uniqueMsg  = "identitySources must be unique: each (in, name) at most once"
		nameMsg    = "name is required for Header, Query and Cookie sources and not allowed for Method and Path"
		ttlMsg     = "ttl must be between 0s and 3600s"
		denyMsg    = "denyTTL must not exceed ttl"
		timeoutMsg = "timeout must be between 10ms and 30s"
	)

	runValidationCases(t, good, []validationCase[*authv1alpha1.CustomAuthorizer]{
		{
			name: "minimal object gets defaults",
			want: accepted,
			check: func(t *testing.T, got *authv1alpha1.CustomAuthorizer) {
				s := got.Spec
				if s.Cache == nil {
					t.Fatalf("cache not defaulted")
				}
				if s.Cache.TTL == nil || s.Cache.TTL.Duration != 30*time.Second {
					t.Errorf("cache.ttl = %v, want 30s", s.Cache.TTL)
				}
				if s.Cache.DenyTTL != nil {
					t.Errorf("cache.denyTTL = %v, want unset (0s)", s.Cache.DenyTTL)
				}
				if s.Cache.MaxEntries == nil || *s.Cache.MaxEntries != 10000 {
					t.Errorf("cache.maxEntries = %v, want 10000", s.Cache.MaxEntries)
				}
				if s.Timeout == nil || s.Timeout.Duration != 3*time.Second {
					t.Errorf("timeout = %v, want 3s", s.Timeout)
				}
				if s.ResponseFormat != authv1alpha1.ResponseFormatAPIG {
					t.Errorf("responseFormat = %q, want APIG", s.ResponseFormat)
				}
				if s.FailurePolicy != authv1alpha1.FailurePolicyDeny {
					t.Errorf("failurePolicy = %q, want Deny", s.FailurePolicy)
				}
			},
		},
		{
			name: "full object",
			mutate: func(a *authv1alpha1.CustomAuthorizer) {
				a.Spec.URL = "https://[2001:db8::1]:8443/verify?x=1"
				a.Spec.IdentitySources = []authv1alpha1.IdentitySource{
					header("token"), query("test"), cookie("session"),
					method, pathSource,
				}
				a.Spec.Cache = &authv1alpha1.AuthorizerCache{TTL: dur(time.Hour), DenyTTL: dur(time.Hour), MaxEntries: ptr[int32](1000000)}
				a.Spec.Timeout = dur(30 * time.Second)
				a.Spec.SendBody = true
				a.Spec.UserData = strings.Repeat("u", 2048)
				a.Spec.ResponseFormat = authv1alpha1.ResponseFormatMPaaS
				a.Spec.FailurePolicy = authv1alpha1.FailurePolicyAllow
			},
			want: accepted,
			check: func(t *testing.T, got *authv1alpha1.CustomAuthorizer) {
				s := got.Spec
				if s.Cache.TTL.Duration != time.Hour || s.Cache.DenyTTL.Duration != time.Hour || *s.Cache.MaxEntries != 1000000 {
					t.Errorf("cache = %+v, want ttl 1h, denyTTL 1h, maxEntries 1000000", s.Cache)
				}
				if s.ResponseFormat != authv1alpha1.ResponseFormatMPaaS || s.FailurePolicy != authv1alpha1.FailurePolicyAllow {
					t.Errorf("responseFormat, failurePolicy = %q, %q; want MPaaS, Allow", s.ResponseFormat, s.FailurePolicy)
				}
			},
		},
		{
			name: "userDataFrom alone",
			mutate: func(a *authv1alpha1.CustomAuthorizer) {
				a.Spec.UserDataFrom = &authv1alpha1.UserDataSource{SecretKeyRef: authv1alpha1.SecretKeySelector{Name: "s", Key: "k"}}
			},
			want: accepted,
		},

		// url
		{name: "url https with IP and port", mutate: url("https://10.0.0.1:8443/x"), want: accepted},
		{name: "url ftp", mutate: url("ftp://x"), want: urlMsg},
		{name: "url not a url", mutate: url("not a url"), want: urlMsg},
		{name: "url without host", mutate: url("http://"), want: urlMsg},
		{name: "url relative", mutate: url("/verify"), want: urlMsg},
		{name: "url empty", mutate: url(""), want: urlMsg},
		{name: "url too long", mutate: url("http://a/" + strings.Repeat("p", 2048)), want: "Too long: may not be more than 2048 bytes"},

		// identitySources
		{name: "identitySources empty", raw: set("spec.identitySources", []any{}), want: "spec.identitySources in body should have at least 1 items"},
		{name: "identitySources missing", raw: remove("spec.identitySources"), want: "spec.identitySources: Required value"},
		{
			name:   "identitySources eight",
			mutate: sources(header("a"), header("b"), header("c"), header("d"), query("a"), query("b"), cookie("a"), method),
			want:   accepted,
		},
		{
			name:   "identitySources nine",
			mutate: sources(header("a"), header("b"), header("c"), header("d"), header("e"), header("f"), header("g"), header("h"), header("i")),
			want:   "spec.identitySources: Too many: 9: must have at most 8 items",
		},
		{name: "duplicate header differing in case", mutate: sources(header("Token"), header("token")), want: uniqueMsg},
		{name: "duplicate header", mutate: sources(header("token"), query("x"), header("token")), want: uniqueMsg},
		{name: "query names differing in case", mutate: sources(query("Test"), query("test")), want: accepted},
		{name: "duplicate query", mutate: sources(query("test"), query("test")), want: uniqueMsg},
		{name: "duplicate cookie differing in case", mutate: sources(cookie("Session"), cookie("session")), want: uniqueMsg},
		{name: "same name in header, query and cookie", mutate: sources(header("token"), query("token"), cookie("token")), want: accepted},
		{name: "duplicate method", mutate: sources(method, method), want: uniqueMsg},
		{name: "header without name", mutate: sources(authv1alpha1.IdentitySource{In: authv1alpha1.IdentityHeader}), want: nameMsg},
		{name: "cookie without name", mutate: sources(authv1alpha1.IdentitySource{In: authv1alpha1.IdentityCookie}), want: nameMsg},
		{name: "method with a name", mutate: sources(authv1alpha1.IdentitySource{In: authv1alpha1.IdentityMethod, Name: "x"}), want: nameMsg},
		{name: "path with a name", mutate: sources(authv1alpha1.IdentitySource{In: authv1alpha1.IdentityPath, Name: "x"}), want: nameMsg},
		{name: "unknown location", mutate: sources(authv1alpha1.IdentitySource{In: "Body", Name: "x"}), want: `spec.identitySources[0].in: Unsupported value: "Body"`},
		{name: "header name with a space", mutate: sources(header("x token")), want: "spec.identitySources[0].name in body should match"},
		{name: "header name too long", mutate: sources(header(strings.Repeat("h", 129))), want: "spec.identitySources[0].name: Too long: may not be more than 128 bytes"},

		// cache
		{name: "ttl 0s disables the cache", mutate: cache(authv1alpha1.AuthorizerCache{TTL: dur(0)}), want: accepted},
		{name: "ttl 3600s", mutate: cache(authv1alpha1.AuthorizerCache{TTL: dur(3600 * time.Second)}), want: accepted},
		{name: "ttl above 3600s", mutate: cache(authv1alpha1.AuthorizerCache{TTL: dur(3601 * time.Second)}), want: ttlMsg},
		{name: "ttl negative", mutate: cache(authv1alpha1.AuthorizerCache{TTL: dur(-time.Second)}), want: ttlMsg},
		// The schema's duration format also takes "30 seconds" or "1d", which the Go client
		// cannot decode (one such object would break every list and watch); the pattern
		// admits only what time.ParseDuration reads and time.Duration.String writes.
		{name: "ttl as Go writes it", raw: set("spec.cache.ttl", "1h0m0s"), want: accepted},
		{name: "ttl 0 without unit", raw: set("spec.cache.ttl", "0"), want: accepted},
		{name: "ttl not a Go duration", raw: set("spec.cache.ttl", "30 seconds"), want: "spec.cache.ttl in body should match"},
		{name: "ttl in days", raw: set("spec.cache.ttl", "1d"), want: "spec.cache.ttl in body should match"},
		{name: "denyTTL not a Go duration", raw: set("spec.cache.denyTTL", "5 s"), want: "spec.cache.denyTTL in body should match"},
		{name: "denyTTL equal to ttl", mutate: cache(authv1alpha1.AuthorizerCache{TTL: dur(10 * time.Second), DenyTTL: dur(10 * time.Second)}), want: accepted},
		{name: "denyTTL above ttl", mutate: cache(authv1alpha1.AuthorizerCache{TTL: dur(10 * time.Second), DenyTTL: dur(11 * time.Second)}), want: denyMsg},
		{name: "denyTTL within default ttl", mutate: cache(authv1alpha1.AuthorizerCache{DenyTTL: dur(30 * time.Second)}), want: accepted},
		{name: "denyTTL above default ttl", mutate: cache(authv1alpha1.AuthorizerCache{DenyTTL: dur(31 * time.Second)}), want: denyMsg},
		{name: "denyTTL with ttl 0s", mutate: cache(authv1alpha1.AuthorizerCache{TTL: dur(0), DenyTTL: dur(time.Second)}), want: denyMsg},
		{name: "denyTTL negative", mutate: cache(authv1alpha1.AuthorizerCache{DenyTTL: dur(-time.Second)}), want: "denyTTL must not be negative"},
		{name: "maxEntries 0", mutate: cache(authv1alpha1.AuthorizerCache{MaxEntries: ptr[int32](0)}), want: "spec.cache.maxEntries in body should be greater than or equal to 1"},
		{name: "maxEntries above 1000000", mutate: cache(authv1alpha1.AuthorizerCache{MaxEntries: ptr[int32](1000001)}), want: "spec.cache.maxEntries in body should be less than or equal to 1000000"},

		// timeout
		{name: "timeout 10ms", mutate: timeout(10 * time.Millisecond), want: accepted},
		{name: "timeout 30s", mutate: timeout(30 * time.Second), want: accepted},
		{name: "timeout 5ms", mutate: timeout(5 * time.Millisecond), want: timeoutMsg},
		{name: "timeout 31s", mutate: timeout(31 * time.Second), want: timeoutMsg},
		{name: "timeout fractional", raw: set("spec.timeout", "1.5s"), want: accepted},
		{name: "timeout in microseconds", raw: set("spec.timeout", "20000µs"), want: accepted},
		{name: "timeout not a Go duration", raw: set("spec.timeout", "3 sec"), want: "spec.timeout in body should match"},

		// userData
		{
			name:   "userData too long",
			mutate: func(a *authv1alpha1.CustomAuthorizer) { a.Spec.UserData = strings.Repeat("u", 2049) },
			want:   "spec.userData: Too long: may not be more than 2048 bytes",
		},
		{
			name: "userData and userDataFrom",
			mutate: func(a *authv1alpha1.CustomAuthorizer) {
				a.Spec.UserData = "user@123"
				a.Spec.UserDataFrom = &authv1alpha1.UserDataSource{SecretKeyRef: authv1alpha1.SecretKeySelector{Name: "s", Key: "k"}}
			},
			want: "set userData or userDataFrom, not both",
		},
		{
			name: "userDataFrom without key",
			mutate: func(a *authv1alpha1.CustomAuthorizer) {
				a.Spec.UserDataFrom = &authv1alpha1.UserDataSource{SecretKeyRef: authv1alpha1.SecretKeySelector{Name: "s"}}
			},
			want: "spec.userDataFrom.secretKeyRef.key in body should be at least 1 chars long",
		},

		// enums
		{
			name:   "responseFormat XML",
			mutate: func(a *authv1alpha1.CustomAuthorizer) { a.Spec.ResponseFormat = "XML" },
			want:   `spec.responseFormat: Unsupported value: "XML"`,
		},
		{
			name:   "failurePolicy Maybe",
			mutate: func(a *authv1alpha1.CustomAuthorizer) { a.Spec.FailurePolicy = "Maybe" },
			want:   `spec.failurePolicy: Unsupported value: "Maybe"`,
		},
	})
}

// TestAPIBindingValidation proves the APIBinding CRD's schema, CEL rules and defaults.
func TestAPIBindingValidation(t *testing.T) {
	t.Parallel()
	good := func() *authv1alpha1.APIBinding {
		return &authv1alpha1.APIBinding{Spec: authv1alpha1.APIBindingSpec{
			Hosts:  []string{"api.example.com"},
			Routes: []authv1alpha1.Route{{Path: "/orders"}},
			App:    &authv1alpha1.AppAuth{Credentials: []string{"mobile-app"}},
		}}
	}
	hosts := func(h ...string) func(*authv1alpha1.APIBinding) {
		return func(b *authv1alpha1.APIBinding) { b.Spec.Hosts = h }
	}
	path := func(p string) func(*authv1alpha1.APIBinding) {
		return func(b *authv1alpha1.APIBinding) { b.Spec.Routes = []authv1alpha1.Route{{Path: p}} }
	}
	methods := func(m ...authv1alpha1.HTTPMethod) func(*authv1alpha1.APIBinding) {
		return func(b *authv1alpha1.APIBinding) { b.Spec.Routes[0].Methods = m }
	}
	contextHeader := func(h string) func(*authv1alpha1.APIBinding) {
		return func(b *authv1alpha1.APIBinding) {
			b.Spec.Upstream = &authv1alpha1.Upstream{ContextHeaders: []authv1alpha1.ContextHeader{{Context: "user", Header: h}}}
		}
	}
	routes := func(n, pathLen int) []authv1alpha1.Route {
		rs := make([]authv1alpha1.Route, n)
		for i := range rs {
			p := fmt.Sprintf("/r%03d/", i)
			rs[i] = authv1alpha1.Route{Path: p + strings.Repeat("p", pathLen-len(p))}
		}
		return rs
	}
	longHost := func(i int) string {
		// Three 63-character labels and a 61-character one: 253 characters, the maximum.
		l := strings.Repeat("a", 63)
		return fmt.Sprintf("%s.%s.%s.%s%02d", l, l, l, strings.Repeat("b", 59), i)
	}
	const (
		hostMsg      = "hosts must be lower-case DNS names such as api.example.com, or wildcards such as *.example.com"
		slashMsg     = "path must start with '/'"
		canonicalMsg = "path must be canonical: no empty, '.' or '..' segments"
		charsMsg     = "path may hold only unreserved characters, sub-delimiters, ':', '@' and '/'"
		factorMsg    = "set app and/or customAuthorizer, or anonymous: true for a public route"
		anonMsg      = "anonymous: true cannot be combined with app or customAuthorizer"
		appMsg       = "app needs credentials or a credentialSelector"
		headerMsg    = "header must not be host, authorization, a hop-by-hop header, an AppCode header or an x-portcullis- header"
	)

	runValidationCases(t, good, []validationCase[*authv1alpha1.APIBinding]{
		{
			name: "minimal object gets defaults",
			want: accepted,
			check: func(t *testing.T, got *authv1alpha1.APIBinding) {
				if m := got.Spec.Routes[0].Match; m != authv1alpha1.PathMatchPrefix {
					t.Errorf("routes[0].match = %q, want PathPrefix", m)
				}
				if m := got.Spec.App.Methods; !slices.Equal(m, []authv1alpha1.AppAuthMethod{authv1alpha1.AppAuthSignature}) {
					t.Errorf("app.methods = %v, want [Signature]", m)
				}
			},
		},
		{
			name: "full object",
			mutate: func(b *authv1alpha1.APIBinding) {
				b.Spec.Hosts = []string{"api.example.com", "*.shop.example.com"}
				b.Spec.Routes = []authv1alpha1.Route{
					{Path: "/orders", Match: authv1alpha1.PathMatchExact, Methods: []authv1alpha1.HTTPMethod{"GET", "POST"}},
					{Path: "/"},
				}
				b.Spec.App = &authv1alpha1.AppAuth{
					Methods:              []authv1alpha1.AppAuthMethod{authv1alpha1.AppAuthSignature, authv1alpha1.AppAuthAppCode},
					Credentials:          []string{"mobile-app", "web-app"},
					CredentialSelector:   &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}},
					AllowUnsignedPayload: true,
				}
				b.Spec.CustomAuthorizer = &authv1alpha1.LocalObjectReference{Name: "token-check"}
				b.Spec.Upstream = &authv1alpha1.Upstream{
					ContextHeaderPrefix: "x-auth-",
					ContextHeaders:      []authv1alpha1.ContextHeader{{Context: "user", Header: "x-user-id"}, {Context: "tenant_id", Header: "x-tenant"}},
				}
			},
			want: accepted,
			check: func(t *testing.T, got *authv1alpha1.APIBinding) {
				want := []authv1alpha1.AppAuthMethod{authv1alpha1.AppAuthSignature, authv1alpha1.AppAuthAppCode}
				if !slices.Equal(got.Spec.App.Methods, want) {
					t.Errorf("app.methods = %v, want %v", got.Spec.App.Methods, want)
				}
				if got.Spec.Routes[0].Match != authv1alpha1.PathMatchExact || got.Spec.Routes[1].Match != authv1alpha1.PathMatchPrefix {
					t.Errorf("routes = %+v, want Exact then defaulted PathPrefix", got.Spec.Routes)
				}
				if got.Spec.CustomAuthorizer == nil || got.Spec.CustomAuthorizer.Name != "token-check" {
					t.Errorf("customAuthorizer = %v, want token-check", got.Spec.CustomAuthorizer)
				}
			},
		},
		{
			name: "customAuthorizer alone",
			mutate: func(b *authv1alpha1.APIBinding) {
				b.Spec.App = nil
				b.Spec.CustomAuthorizer = &authv1alpha1.LocalObjectReference{Name: "token-check"}
			},
			want: accepted,
		},
		{
			name: "anonymous alone",
			mutate: func(b *authv1alpha1.APIBinding) {
				b.Spec.App = nil
				b.Spec.Anonymous = true
			},
			want: accepted,
		},
		{
			name: "app with credentialSelector only",
			mutate: func(b *authv1alpha1.APIBinding) {
				b.Spec.App = &authv1alpha1.AppAuth{CredentialSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}}
			},
			want: accepted,
		},

		// hosts
		{name: "hosts missing", raw: remove("spec.hosts"), want: "spec.hosts: Required value"},
		{name: "hosts empty", raw: set("spec.hosts", []any{}), want: "spec.hosts in body should have at least 1 items"},
		{
			name: "hosts sixteen of 253 characters",
			mutate: func(b *authv1alpha1.APIBinding) {
				b.Spec.Hosts = nil
				for i := range 16 {
					b.Spec.Hosts = append(b.Spec.Hosts, longHost(i))
				}
			},
			want: accepted,
		},
		{
			name: "hosts seventeen",
			mutate: func(b *authv1alpha1.APIBinding) {
				b.Spec.Hosts = nil
				for i := range 17 {
					b.Spec.Hosts = append(b.Spec.Hosts, fmt.Sprintf("h%d.example.com", i))
				}
			},
			want: "spec.hosts: Too many: 17: must have at most 16 items",
		},
		{name: "host duplicate", mutate: hosts("api.example.com", "api.example.com"), want: `spec.hosts[1]: Duplicate value: "api.example.com"`},
		{name: "host single label", mutate: hosts("localhost"), want: accepted},
		{name: "host wildcard", mutate: hosts("*.shop.example.com"), want: accepted},
		{name: "host upper-case", mutate: hosts("API.example.com"), want: hostMsg},
		{name: "host bare wildcard dot", mutate: hosts("*."), want: hostMsg},
		{name: "host bare wildcard", mutate: hosts("*"), want: hostMsg},
		{name: "host wildcard in the middle", mutate: hosts("a.*.b"), want: hostMsg},
		{name: "host partial wildcard", mutate: hosts("api*.example.com"), want: hostMsg},
		{name: "host with port", mutate: hosts("api.example.com:443"), want: hostMsg},
		{name: "host trailing dot", mutate: hosts("api.example.com."), want: hostMsg},
		{name: "host label starting with hyphen", mutate: hosts("-api.example.com"), want: hostMsg},
		{name: "host label of 64 characters", mutate: hosts(strings.Repeat("a", 64) + ".example.com"), want: hostMsg},
		{name: "host too long", mutate: hosts(longHost(0) + "0"), want: "Too long: may not be more than 253 bytes"},

		// routes
		{name: "routes missing", raw: remove("spec.routes"), want: "spec.routes: Required value"},
		{name: "routes empty", raw: set("spec.routes", []any{}), want: "spec.routes in body should have at least 1 items"},
		{
			name:   "routes sixty-four of 1024 characters",
			mutate: func(b *authv1alpha1.APIBinding) { b.Spec.Routes = routes(64, 1024) },
			want:   accepted,
		},
		{
			name:   "routes sixty-five",
			mutate: func(b *authv1alpha1.APIBinding) { b.Spec.Routes = routes(65, 10) },
			want:   "spec.routes: Too many: 65: must have at most 64 items",
		},
		{name: "path root", mutate: path("/"), want: accepted},
		{name: "path with every allowed character", mutate: path("/a-z.A_Z~0:9@!$&'()*+,;=/x"), want: accepted},
		{name: "path with dot-prefixed segments", mutate: path("/a/.well-known/..b/c."), want: accepted},
		{name: "path empty", mutate: path(""), want: "spec.routes[0].path in body should be at least 1 chars long"},
		{name: "path too long", mutate: path("/" + strings.Repeat("p", 1024)), want: "spec.routes[0].path: Too long: may not be more than 1024 bytes"},
		{name: "path without leading slash", mutate: path("orders"), want: slashMsg},
		{name: "path empty segment", mutate: path("/a//b"), want: canonicalMsg},
		{name: "path dot segment", mutate: path("/a/./b"), want: canonicalMsg},
		{name: "path dot-dot segment", mutate: path("/a/../b"), want: canonicalMsg},
		{name: "path trailing dot-dot", mutate: path("/a/.."), want: canonicalMsg},
		{name: "path trailing dot", mutate: path("/a/."), want: canonicalMsg},
		{name: "path percent-encoded", mutate: path("/a%2Fb"), want: charsMsg},
		{name: "path with query", mutate: path("/a?b"), want: charsMsg},
		{name: "path with fragment", mutate: path("/a#b"), want: charsMsg},
		{name: "path with backslash", mutate: path(`/a\b`), want: charsMsg},
		{name: "path with space", mutate: path("/a b"), want: charsMsg},
		{name: "path with non-ASCII", mutate: path("/caf\u00e9"), want: charsMsg},
		{
			name:   "match Regex",
			mutate: func(b *authv1alpha1.APIBinding) { b.Spec.Routes[0].Match = "Regex" },
			want:   `spec.routes[0].match: Unsupported value: "Regex"`,
		},
		{name: "methods all nine", mutate: methods("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"), want: accepted},
		{name: "method lower-case", mutate: methods("get"), want: `spec.routes[0].methods[0]: Unsupported value: "get"`},
		{name: "method unknown", mutate: methods("GET", "FOO"), want: `spec.routes[0].methods[1]: Unsupported value: "FOO"`},
		{name: "method duplicate", mutate: methods("GET", "GET"), want: `spec.routes[0].methods[1]: Duplicate value: "GET"`},

		// factors
		{
			name:   "no factor and not anonymous",
			mutate: func(b *authv1alpha1.APIBinding) { b.Spec.App = nil },
			want:   factorMsg,
		},
		{
			name:   "anonymous with app",
			mutate: func(b *authv1alpha1.APIBinding) { b.Spec.Anonymous = true },
			want:   anonMsg,
		},
		{
			name: "anonymous with customAuthorizer",
			mutate: func(b *authv1alpha1.APIBinding) {
				b.Spec.App = nil
				b.Spec.Anonymous = true
				b.Spec.CustomAuthorizer = &authv1alpha1.LocalObjectReference{Name: "token-check"}
			},
			want: anonMsg,
		},
		{
			name:   "app with neither credentials nor selector",
			mutate: func(b *authv1alpha1.APIBinding) { b.Spec.App = &authv1alpha1.AppAuth{} },
			want:   appMsg,
		},
		{
			name: "app with empty credentials",
			raw:  set("spec.app.credentials", []any{}),
			want: appMsg,
		},
		{
			name: "app methods empty",
			raw:  set("spec.app.methods", []any{}),
			want: "spec.app.methods in body should have at least 1 items",
		},
		{
			name:   "app method unknown",
			mutate: func(b *authv1alpha1.APIBinding) { b.Spec.App.Methods = []authv1alpha1.AppAuthMethod{"HMAC"} },
			want:   `spec.app.methods[0]: Unsupported value: "HMAC"`,
		},
		{
			name: "app method duplicate",
			mutate: func(b *authv1alpha1.APIBinding) {
				b.Spec.App.Methods = []authv1alpha1.AppAuthMethod{authv1alpha1.AppAuthAppCode, authv1alpha1.AppAuthAppCode}
			},
			want: `spec.app.methods[1]: Duplicate value: "AppCode"`,
		},
		{
			name:   "app credential with an empty name",
			mutate: func(b *authv1alpha1.APIBinding) { b.Spec.App.Credentials = []string{""} },
			want:   "spec.app.credentials[0] in body should be at least 1 chars long",
		},
		{
			name:   "customAuthorizer without name",
			mutate: func(b *authv1alpha1.APIBinding) { b.Spec.CustomAuthorizer = &authv1alpha1.LocalObjectReference{} },
			want:   "spec.customAuthorizer.name in body should be at least 1 chars long",
		},

		// upstream
		{name: "context header x-portcullis-", mutate: contextHeader("x-portcullis-foo"), want: headerMsg},
		{name: "context header host", mutate: contextHeader("host"), want: headerMsg},
		{name: "context header authorization", mutate: contextHeader("authorization"), want: headerMsg},
		{name: "context header hop-by-hop", mutate: contextHeader("transfer-encoding"), want: headerMsg},
		{name: "context header AppCode", mutate: contextHeader("x-apig-appcode"), want: headerMsg},
		{name: "context header upper-case", mutate: contextHeader("Authorization"), want: "spec.upstream.contextHeaders[0].header in body should match '^[a-z0-9][a-z0-9-]*$'"},
		{
			name: "context key starting with a digit",
			mutate: func(b *authv1alpha1.APIBinding) {
				b.Spec.Upstream = &authv1alpha1.Upstream{ContextHeaders: []authv1alpha1.ContextHeader{{Context: "1user", Header: "x-user"}}}
			},
			want: "spec.upstream.contextHeaders[0].context in body should match",
		},
		{
			name: "context header named twice",
			mutate: func(b *authv1alpha1.APIBinding) {
				b.Spec.Upstream = &authv1alpha1.Upstream{ContextHeaders: []authv1alpha1.ContextHeader{
					{Context: "user", Header: "x-user"}, {Context: "uid", Header: "x-user"}}}
			},
			want: "each contextHeaders header may appear only once",
		},
		{
			name: "contextHeaderPrefix x-portcullis-",
			mutate: func(b *authv1alpha1.APIBinding) {
				b.Spec.Upstream = &authv1alpha1.Upstream{ContextHeaderPrefix: "x-portcullis-"}
			},
			want: "contextHeaderPrefix must not start with x-portcullis-",
		},
		{
			name: "contextHeaderPrefix upper-case",
			mutate: func(b *authv1alpha1.APIBinding) {
				b.Spec.Upstream = &authv1alpha1.Upstream{ContextHeaderPrefix: "X-Auth-"}
			},
			want: "spec.upstream.contextHeaderPrefix in body should match",
		},
	})
}
