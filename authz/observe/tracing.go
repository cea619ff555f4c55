package observe

import (
	"context"
	"net/http"
	"os"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// Tracing is what the front-ends and the authorizer client need to be traced. The zero
// value (tracing off) adds nothing to the request path.
type Tracing struct {
	// GRPC are server options that trace every Check (continuing the proxy's trace).
	GRPC []grpc.ServerOption
	// HTTP wraps the forward-auth handler.
	HTTP func(http.Handler) http.Handler
	// Transport wraps the authorizer client's transport: one client span per call, with
	// the trace context propagated to the function.
	Transport func(http.RoundTripper) http.RoundTripper
	shutdown  func(context.Context) error
}

// Shutdown flushes and stops the exporter (nothing when tracing is off).
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Enabled reports whether anything is traced.
func (t *Tracing) Enabled() bool { return t != nil && t.HTTP != nil }

// TracingFromEnv turns tracing on, exporting over OTLP/gRPC, when OTEL_EXPORTER_OTLP_ENDPOINT
// or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (the exporter reads the other standard
// OTEL_* variables itself). Otherwise it returns the zero Tracing.
func TracingFromEnv(ctx context.Context, version string) (*Tracing, error) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return &Tracing{}, nil
	}
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, err
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName("portcullis"), semconv.ServiceVersion(version)))
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	t := NewTracing(tp)
	t.shutdown = tp.Shutdown
	return t, nil
}

// NewTracing traces with tp (tests pass one with an in-memory exporter).
func NewTracing(tp trace.TracerProvider) *Tracing {
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	otel.SetTextMapPropagator(prop)
	return &Tracing{
		GRPC: []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(prop)))},
		HTTP: func(h http.Handler) http.Handler {
			return otelhttp.NewHandler(h, "forward-auth", otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop))
		},
		Transport: func(rt http.RoundTripper) http.RoundTripper {
			return otelhttp.NewTransport(rt, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop),
				otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return "authorizer.call" }))
		},
	}
}
