package observe_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/portcullis-dev/portcullis/authz/authorizer"
	"github.com/portcullis-dev/portcullis/authz/compile"
	"github.com/portcullis-dev/portcullis/authz/engine"
	"github.com/portcullis-dev/portcullis/authz/engine/enginetest"
	"github.com/portcullis-dev/portcullis/authz/extauthz"
	"github.com/portcullis-dev/portcullis/authz/observe"
)

// TestTracing: with tracing on, a Check that calls the authorizer yields a server span and
// an authorizer.call client span in one trace, and the function receives the trace context.
func TestTracing(t *testing.T) {
	var traceparent atomic.Value
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		traceparent.Store(r.Header.Get("Traceparent"))
		_, _ = w.Write([]byte(`{"status":"allow"}`))
	}))
	defer fn.Close()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tr := observe.NewTracing(tp)
	if !tr.Enabled() {
		t.Fatal("tracing not enabled")
	}
	snap := enginetest.World(t, fn.URL+"/verify", time.Now())
	client := authorizer.New(authorizer.Options{Transport: tr.Transport(authorizer.NewTransport())})
	eng := &engine.Engine{Snapshot: func() *compile.Snapshot { return snap }, Authorizer: client}
	gs, _ := extauthz.NewGRPCServer(&extauthz.Server{Engine: eng}, tr.GRPC...)
	conn := enginetest.Serve(t, gs)
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: "10.1.2.3"}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Host: "api.example.com", Path: "/orders?test=demo",
			Headers: map[string]string{"x-app-code": appCode, "token": "t0k"},
		}},
	}}
	resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), req)
	if err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("check: %v %v", resp, err)
	}
	// The server span ends after the response is sent, so the client may see the answer
	// before the span is exported: wait for it.
	var spans tracetest.SpanStubs
	var server, call *tracetest.SpanStub
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		spans, server, call = exp.GetSpans(), nil, nil
		for i := range spans {
			switch spans[i].Name {
			case "envoy.service.auth.v3.Authorization/Check":
				server = &spans[i]
			case "authorizer.call":
				call = &spans[i]
			}
		}
		if (server != nil && call != nil) || time.Now().After(deadline) {
			break
		}
	}
	if server == nil || call == nil {
		t.Fatalf("spans: %v", spans)
	}
	if call.SpanContext.TraceID() != server.SpanContext.TraceID() || call.Parent.SpanID() != server.SpanContext.SpanID() {
		t.Errorf("the authorizer call is not a child of the Check span")
	}
	if tp, _ := traceparent.Load().(string); tp == "" {
		t.Error("the function did not receive a traceparent header")
	}
}
