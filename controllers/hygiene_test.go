package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/portcullis-dev/portcullis/api/v1alpha1"
	authzclient "github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/authz/httpauth"
	"github.com/portcullis-dev/portcullis/authz/observe"
	"github.com/portcullis-dev/portcullis/controllers"
	"github.com/portcullis-dev/portcullis/internal/canary"
)

// Canaries of the Kubernetes hygiene world: no log line, status, Event, metric or deny may
// hold one.
const (
	kSecret        = "cnrySC-Lq3Wm5Nx7Bz"
	kRotated       = "cnryRS-Pz4Kx6Vw8Qa"
	kPlainCode     = "cnryPC-Hd2Jf4Kg6Lh8Mj0Nk3Bv5Cx7Zq"
	kHashedCode    = "cnryHC-Tb1Yc3Ud5Ve7Wf9Xg2Hn4Jm6Kp"
	kShortSecret   = "cnrySS-1qW3e"
	kShortCode     = "cnryBC-7Rt9y"
	kBadHash       = "cnryBH-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8Nn7Mm6Ll5Kk4Jj3Ii2Hh"
	kNoKeySecret   = "cnryNK-Ab3Cd5Ef7"
	kDisabledSec   = "cnryDS-Gh7Ij9Kl1"
	kDisabledCode  = "cnryDC-Mn1Op3Qr5St7Uv9Wx2Yz4Ab6Cd"
	kExpiredCode   = "cnryEC-Xy2Za4Bc6De8Fg0Hi3Jk5Lm7No"
	kOtherCode     = "cnryOC-Ij1Kl3Mn5Op7Qr9St2Uv4Wx6Yz"
	kConflictSec   = "cnryCS-Uv4Wx6Yz8"
	kConflictCode  = "cnryCC-Ab8Cd0Ef2Gh4Ij6Kl9Mn1Op3Qr"
	kWrongCode     = "cnryWC-Kl7Mn9Op1Qr3St5Uv8Wx0Yz2Ab"
	kWrongSecret   = "cnryWS-Wx8Yz0Ab2"
	kUserData      = "cnryUD-Ab2Cd4Ef6"
	kLongUserData  = "cnryLU-Gh8Ij0Kl2"
	kToken         = "cnryTK-"
	kTokenSuffix   = "-Kl2Mn4Op6"
	kUnlabelledSec = "cnryUL-Qr8St0Uv2"
)

// kToken4 is the token that makes the test authorizer answer a given way (spelt backwards,
// so that no piece of a token is an English word).
func kToken4(answer string) string {
	r := []rune(answer)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return kToken + string(r) + kTokenSuffix
}

// TestSecretsHygieneKubernetes runs a replica of the Kubernetes source logging at the
// highest verbosity (its manager, policy, status writer, client-go's klog and
// --log-decisions) against a namespace full of canaries: good, invalid, disabled, expired,
// conflicting and rotated credentials, authorizers with user data from a Secret, and an
// authorizer that fails in every way, echoing the token. Then it reads everything an
// operator or attacker can see (logs, status of every object, Events, /metrics, deny
// bodies and headers) and looks for each canary.
func TestSecretsHygieneKubernetes(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	host := ns + ".hygiene.example.com"

	logs := &canary.Log{}
	log := zap.New(zap.WriteTo(logs), zap.Level(zapcore.Level(-10)))

	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Headers  map[string]string `json:"headers"`
			UserData string            `json:"user_data"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		tok := ev.Headers["token"]
		if ev.UserData != kUserData {
			http.Error(w, "no user data", http.StatusBadRequest)
			return
		}
		switch tok {
		case kToken4("allow"):
			_, _ = io.WriteString(w, `{"status":"allow","context":{"user":"u-1"}}`)
		case kToken4("deny"):
			_, _ = io.WriteString(w, `{"status":"deny","context":{"why":"`+tok+`"}}`)
		case kToken4("malformed"):
			_, _ = io.WriteString(w, `{"status":"allow","context":{"user":"`+tok+`"`)
		case kToken4("badcontext"):
			_, _ = io.WriteString(w, `{"status":"allow","context":{"`+tok+`.x":"y"}}`)
		default:
			http.Error(w, "token "+tok+" broke the function", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(fn.Close)

	// The replica under test, scoped to the namespace, with its own logger.
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                 controllers.Scheme(),
		Cache:                  controllers.CacheOptions(ns),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 log,
		Controller:             ctrlconfig.Controller{SkipNameValidation: ptr(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := controllers.NewPolicy(log.WithName("policy"))
	if _, err := controllers.SetupKubernetes(mgr, p, ns); err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("replica: %v", err)
		}
	})

	sec := func(name string, data map[string]string) *corev1.Secret { return secret(ns, name, data) }
	good := sec("good", map[string]string{"appKey": ns + "-good", "appSecret": kSecret,
		"appCodes": kPlainCode + "\nsha256:" + strings.TrimPrefix(canary.Digest(kHashedCode), "=")})
	nokey := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nokey", Labels: map[string]string{authv1alpha1.CredentialSecretLabel: "true"}},
		Data: map[string][]byte{"appSecret": []byte(kNoKeySecret)}}
	unlabelled := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unlabelled"},
		StringData: map[string]string{"appKey": ns + "-unlabelled", "appSecret": kUnlabelledSec}}
	create(t, good, nokey, unlabelled,
		sec("short", map[string]string{"appKey": ns + "-short", "appSecret": kShortSecret}),
		sec("badcode", map[string]string{"appKey": ns + "-badcode", "appCodes": kShortCode}),
		sec("badhash", map[string]string{"appKey": ns + "-badhash", "appCodes": "sha256:" + kBadHash}),
		sec("disabled", map[string]string{"appKey": ns + "-disabled", "appSecret": kDisabledSec, "appCodes": kDisabledCode}),
		sec("expired", map[string]string{"appKey": ns + "-expired", "appCodes": kExpiredCode}),
		sec("other", map[string]string{"appKey": ns + "-other", "appCodes": kOtherCode}),
		sec("conflict", map[string]string{"appKey": ns + "-good", "appSecret": kConflictSec, "appCodes": kConflictCode}),
		sec("codeclash", map[string]string{"appKey": ns + "-codeclash", "appCodes": kPlainCode}),
		sec("userdata", map[string]string{"data": kUserData, "long": kLongUserData + strings.Repeat("x", 2100)}))
	creds := map[string]*authv1alpha1.Credential{}
	for _, name := range []string{"good", "short", "badcode", "badhash", "nokey", "disabled", "expired", "other", "unlabelled"} {
		creds[name] = credential(ns, name, name)
	}
	creds["disabled"].Spec.Disabled = true
	creds["expired"].Spec.ExpiresAt = &metav1.Time{Time: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, name := range []string{"good", "short", "badcode", "badhash", "nokey", "disabled", "expired", "other", "unlabelled"} {
		create(t, creds[name])
	}
	wantCondition(t, creds["good"], authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonValid)
	after(t, creds["good"])
	creds["conflict"], creds["codeclash"] = credential(ns, "conflict", "conflict"), credential(ns, "codeclash", "codeclash")
	create(t, creds["conflict"], creds["codeclash"])

	az := func(name, key string) *authv1alpha1.CustomAuthorizer {
		a := authorizer(ns, name)
		a.Spec.URL = fn.URL + "/verify"
		a.Spec.Cache = &authv1alpha1.AuthorizerCache{TTL: &metav1.Duration{}}
		a.Spec.UserDataFrom = &authv1alpha1.UserDataSource{SecretKeyRef: authv1alpha1.SecretKeySelector{Name: "userdata", Key: key}}
		return a
	}
	fnAz, longAz, missingAz := az("fn", "data"), az("toolong", "long"), az("missingkey", "nope")
	create(t, fnAz, longAz, missingAz)
	both := []authv1alpha1.AppAuthMethod{authv1alpha1.AppAuthSignature, authv1alpha1.AppAuthAppCode}
	twoFactor := binding(ns, "two-factor", host, "/app", func(s *authv1alpha1.APIBindingSpec) {
		s.App = &authv1alpha1.AppAuth{Methods: both, Credentials: []string{"good", "short", "badcode", "badhash", "nokey", "disabled", "expired", "conflict", "codeclash", "unlabelled"}}
		s.CustomAuthorizer = &authv1alpha1.LocalObjectReference{Name: "fn"}
	})
	broken := binding(ns, "broken", host, "/broken", func(s *authv1alpha1.APIBindingSpec) {
		s.CustomAuthorizer = &authv1alpha1.LocalObjectReference{Name: "toolong"}
	})
	missing := binding(ns, "missing", host, "/missing", func(s *authv1alpha1.APIBindingSpec) {
		s.CustomAuthorizer = &authv1alpha1.LocalObjectReference{Name: "missingkey"}
	})
	create(t, twoFactor, broken, missing)

	for _, c := range []struct {
		obj    client.Object
		reason string
	}{
		{creds["short"], authv1alpha1.ReasonSecretInvalid}, {creds["badcode"], authv1alpha1.ReasonSecretInvalid},
		{creds["badhash"], authv1alpha1.ReasonSecretInvalid}, {creds["nokey"], authv1alpha1.ReasonSecretInvalid},
		{creds["disabled"], authv1alpha1.ReasonDisabled}, {creds["expired"], authv1alpha1.ReasonExpired},
		{creds["conflict"], authv1alpha1.ReasonAppKeyConflict}, {creds["codeclash"], authv1alpha1.ReasonAppKeyConflict},
		{creds["unlabelled"], authv1alpha1.ReasonSecretNotFound},
		{longAz, authv1alpha1.ReasonInvalid}, {missingAz, authv1alpha1.ReasonSecretNotFound},
		{broken, authv1alpha1.ReasonAuthorizerNotReady}, {missing, authv1alpha1.ReasonAuthorizerNotReady},
	} {
		wantCondition(t, c.obj, authv1alpha1.ConditionReady, metav1.ConditionFalse, c.reason)
	}
	wantCondition(t, fnAz, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonValid)
	wantCondition(t, twoFactor, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonValid)
	eventually(t, "the replica's snapshot", func() error {
		if s := p.Snapshot(); s == nil || s.CredentialByAppKey(ns+"-good") == nil || !p.Ready() {
			return fmt.Errorf("not built yet")
		}
		return nil
	})

	// Decisions through the forward-auth front-end, logged and counted.
	reg := prometheus.NewRegistry()
	caller := authzclient.New(authzclient.Options{})
	eng := &engine.Engine{Snapshot: p.Snapshot, Authorizer: caller, MaxClockSkew: 15 * time.Minute}
	obs, err := observe.New(reg, caller, p.Snapshot, log.WithName("decide"), true)
	if err != nil {
		t.Fatal(err)
	}
	front := &httpauth.Handler{Engine: eng, Observe: obs.For("http")}
	sources := map[string]string{}
	type req struct {
		name    string
		path    string
		headers []engine.Header
		want    string
	}
	id := func(answer string) engine.Header { return engine.Header{Name: "token", Value: kToken4(answer)} }
	sig := func(appKey, secret string) []engine.Header { return signed(t, appKey, secret, host, "/app") }
	run := func(reqs []req) {
		for _, r := range reqs {
			hr := httptest.NewRequest(http.MethodGet, "/", nil)
			hr.Header.Set("X-Forwarded-Method", "GET")
			hr.Header.Set("X-Forwarded-Host", host)
			hr.Header.Set("X-Forwarded-Uri", r.path)
			for _, h := range r.headers {
				hr.Header.Add(h.Name, h.Value)
			}
			rec := httptest.NewRecorder()
			front.ServeHTTP(rec, hr)
			got := rec.Header().Get(engine.HeaderError)
			if rec.Code == http.StatusOK {
				got = "ALLOW"
			}
			if got != r.want {
				t.Errorf("%s: %d %s, want %s: %s", r.name, rec.Code, got, r.want, rec.Body)
			}
			var hdr strings.Builder
			_ = rec.Header().Write(&hdr)
			sources["response "+r.name] = fmt.Sprintf("%d\n%s\n%s", rec.Code, hdr.String(), rec.Body)
		}
	}
	run([]req{
		{"allow AppCode", "/app", []engine.Header{appCode(kPlainCode), id("allow")}, "ALLOW"},
		{"allow hashed AppCode", "/app", []engine.Header{appCode(kHashedCode), id("allow")}, "ALLOW"},
		{"allow signed", "/app", append(sig(ns+"-good", kSecret), id("allow")), "ALLOW"},
		{"bad signature", "/app", append(sig(ns+"-good", kWrongSecret), id("allow")), "AUTH_FAILURE"},
		{"the conflicting credential's secret", "/app", append(sig(ns+"-good", kConflictSec), id("allow")), "AUTH_FAILURE"},
		{"the conflicting credential's AppCode", "/app", []engine.Header{appCode(kConflictCode), id("allow")}, "AUTH_FAILURE"},
		{"unknown appKey", "/app", append(sig(ns+"-nobody", kSecret), id("allow")), "AUTH_FAILURE"},
		{"wrong AppCode", "/app", []engine.Header{appCode(kWrongCode), id("allow")}, "AUTH_FAILURE"},
		{"disabled", "/app", []engine.Header{appCode(kDisabledCode), id("allow")}, "AUTH_FAILURE"},
		{"disabled signed", "/app", append(sig(ns+"-disabled", kDisabledSec), id("allow")), "AUTH_FAILURE"},
		{"expired", "/app", []engine.Header{appCode(kExpiredCode), id("allow")}, "AUTH_FAILURE"},
		{"invalid Secret", "/app", append(sig(ns+"-short", kShortSecret), id("allow")), "AUTH_FAILURE"},
		{"unlabelled Secret", "/app", append(sig(ns+"-unlabelled", kUnlabelledSec), id("allow")), "AUTH_FAILURE"},
		{"not bound", "/app", []engine.Header{appCode(kOtherCode), id("allow")}, "UNAUTHORIZED"},
		{"repeated", "/app", []engine.Header{appCode(kPlainCode), {Name: "X-Apig-AppCode", Value: kHashedCode}, id("allow")}, "REQUEST_PARAMETERS_FAILURE"},
		{"identity missing", "/app", []engine.Header{appCode(kPlainCode)}, "AUTHORIZER_IDENTITIES_FAILURE"},
		{"authorizer denies", "/app", []engine.Header{appCode(kPlainCode), id("deny")}, "ACCESS_DENIED"},
		{"authorizer fails", "/app", []engine.Header{appCode(kPlainCode), id("error")}, "AUTHORIZER_FAILURE"},
		{"malformed answer", "/app", []engine.Header{appCode(kPlainCode), id("malformed")}, "AUTHORIZER_FAILURE"},
		{"bad context", "/app", []engine.Header{appCode(kPlainCode), id("badcontext")}, "AUTHORIZER_FAILURE"},
		{"user data too long", "/broken", []engine.Header{id("allow")}, "AUTHORIZER_CONF_FAILURE"},
		{"user data key missing", "/missing", []engine.Header{id("allow")}, "AUTHORIZER_CONF_FAILURE"},
	})

	// Rotating the secret: the old one stops working, the new one works.
	patch := client.MergeFrom(good.DeepCopy())
	good.StringData = map[string]string{"appSecret": kRotated}
	if err := k8s.Patch(ctx, good, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rotation", func() error {
		rec := httptest.NewRecorder()
		hr := httptest.NewRequest(http.MethodGet, "/", nil)
		hr.Header.Set("X-Forwarded-Method", "GET")
		hr.Header.Set("X-Forwarded-Host", host)
		hr.Header.Set("X-Forwarded-Uri", "/app")
		for _, h := range append(sig(ns+"-good", kRotated), id("allow")) {
			hr.Header.Add(h.Name, h.Value)
		}
		front.ServeHTTP(rec, hr)
		if rec.Code != http.StatusOK {
			return fmt.Errorf("%d %s", rec.Code, rec.Body)
		}
		return nil
	})
	run([]req{{"the old secret after rotation", "/app", append(sig(ns+"-good", kSecret), id("allow")), "AUTH_FAILURE"}})

	// What an operator can read: status of every object, Events, metrics, logs.
	lists := []client.ObjectList{&authv1alpha1.CredentialList{}, &authv1alpha1.CustomAuthorizerList{}, &authv1alpha1.APIBindingList{}, &corev1.EventList{}}
	for _, l := range lists {
		if err := k8s.List(ctx, l, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		sources[fmt.Sprintf("%T", l)] = string(b)
	}
	if !strings.Contains(sources["*v1alpha1.CredentialList"], authv1alpha1.ReasonAppKeyConflict) {
		t.Errorf("the statuses were not captured: %s", sources["*v1alpha1.CredentialList"])
	}
	for name, h := range map[string]http.Handler{"decision metrics": promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), "/metrics": controllers.MetricsHandler()} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		sources[name] = rec.Body.String()
	}
	if !strings.Contains(sources["decision metrics"], "portcullis_decisions_total") {
		t.Errorf("no decision metrics: %s", sources["decision metrics"])
	}
	sources["logs"] = logs.String()
	sources["klog"] = klogLogs.String()
	for _, want := range []string{`"msg":"Decision"`, `"msg":"Built snapshot"`, `"msg":"Starting Controller"`} {
		if !strings.Contains(sources["logs"], want) {
			t.Errorf("the logs lack %s; the capture is incomplete", want)
		}
	}

	canaries := []string{kSecret, kRotated, kPlainCode, kHashedCode, canary.Digest(kHashedCode), canary.Digest(kPlainCode), kShortSecret, kShortCode,
		kBadHash, kNoKeySecret, kDisabledSec, kDisabledCode, kExpiredCode, kOtherCode, kConflictSec, kConflictCode, kWrongCode,
		kWrongSecret, kUserData, kLongUserData, kUnlabelledSec}
	for _, a := range []string{"allow", "deny", "error", "malformed", "badcontext"} {
		canaries = append(canaries, kToken4(a))
	}
	for _, l := range canary.Leaks(canaries, sources) {
		t.Error(l)
	}
}
