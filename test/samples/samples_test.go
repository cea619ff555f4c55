// Package samples checks the proxy configurations shipped in config/samples/envoy and
// config/samples/istio, which no test can run here (there is no Envoy or Istio): the Envoy
// bootstrap must parse into go-control-plane's Bootstrap, strictly, and pass its
// protoc-gen-validate rules, every typed_config in it included; the Istio files must agree
// with each other and with Portcullis' ports.
package samples

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	envoyauthv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	// The typed_config types the bootstrap names, registered for protojson and Any.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
)

var samples = filepath.Join("..", "..", "config", "samples")

// grpcPort is the port of Portcullis' ext_authz gRPC service (serve --grpc-addr=:9001).
const grpcPort = 9001

func loadBootstrap(t *testing.T) *bootstrapv3.Bootstrap {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(samples, "envoy", "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatalf("envoy.yaml is not YAML: %v", err)
	}
	var b bootstrapv3.Bootstrap
	// Strict: an unknown or misspelt field fails, as it does in Envoy.
	if err := (protojson.UnmarshalOptions{}).Unmarshal(js, &b); err != nil {
		t.Fatalf("envoy.yaml is not an Envoy v3 Bootstrap: %v", err)
	}
	return &b
}

// TestEnvoyBootstrapValidates parses the bootstrap and runs go-control-plane's validation on
// it and on every message packed in an Any (typed_config, typed_extension_protocol_options),
// which the outer Validate does not look into.
func TestEnvoyBootstrapValidates(t *testing.T) {
	b := loadBootstrap(t)
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("Bootstrap.Validate: %v", err)
	}
	var packed []string
	validateAnys(t, b.ProtoReflect(), &packed)
	for _, want := range []string{
		"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
		"envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
		"envoy.extensions.filters.http.router.v3.Router",
		"envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
	} {
		if !slices.Contains(packed, want) {
			t.Errorf("no %s validated in envoy.yaml (found %v)", want, packed)
		}
	}
}

// validateAnys finds every Any under m, unpacks it (failing on a type nobody registered) and
// validates the message inside, recursively.
func validateAnys(t *testing.T, m protoreflect.Message, seen *[]string) {
	t.Helper()
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			t.Errorf("unpack %s: %v", a.GetTypeUrl(), err)
			return
		}
		name := string(inner.ProtoReflect().Descriptor().FullName())
		*seen = append(*seen, name)
		if v, ok := inner.(interface{ ValidateAll() error }); ok {
			if err := v.ValidateAll(); err != nil {
				t.Errorf("%s.Validate: %v", name, err)
			}
		}
		validateAnys(t, inner.ProtoReflect(), seen)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		switch {
		case fd.IsList():
			for i := range v.List().Len() {
				validateAnys(t, v.List().Get(i).Message(), seen)
			}
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					validateAnys(t, mv.Message(), seen)
					return true
				})
			}
		default:
			validateAnys(t, v.Message(), seen)
		}
		return true
	})
}

// TestEnvoyExtAuthzSettings pins what the README promises about the filter: gRPC to the
// portcullis cluster over the v3 API, fail closed, the body sent for signed requests, ahead
// of the router; and a portcullis cluster that speaks HTTP/2 to port 9001.
func TestEnvoyExtAuthzSettings(t *testing.T) {
	b := loadBootstrap(t)
	var hcm hcmv3.HttpConnectionManager
	found := false
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetTypedConfig().MessageIs(&hcm) {
					if err := f.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
						t.Fatal(err)
					}
					found = true
				}
			}
		}
	}
	if !found {
		t.Fatal("no listener with an http_connection_manager")
	}
	filters := hcm.GetHttpFilters()
	var names []string
	for _, f := range filters {
		names = append(names, f.GetName())
	}
	if !slices.Equal(names, []string{"envoy.filters.http.ext_authz", "envoy.filters.http.router"}) {
		t.Errorf("http_filters = %v, want ext_authz then router", names)
	}
	var ea envoyauthv3.ExtAuthz
	if len(filters) == 0 || filters[0].GetTypedConfig().UnmarshalTo(&ea) != nil {
		t.Fatal("the first http filter is not an ExtAuthz")
	}
	if ea.GetFailureModeAllow() {
		t.Error("failure_mode_allow must be false (fail closed)")
	}
	if got := ea.GetTransportApiVersion(); got != corev3.ApiVersion_V3 {
		t.Errorf("transport_api_version = %v, want V3", got)
	}
	wb := ea.GetWithRequestBody()
	if wb == nil || wb.GetMaxRequestBytes() != 64<<10 || !wb.GetPackAsBytes() || wb.GetAllowPartialMessage() {
		t.Errorf("with_request_body = %v, want max_request_bytes 65536 (--max-body-bytes), pack_as_bytes, no partial messages", wb)
	}
	if ea.GetIncludePeerCertificate() {
		t.Error("include_peer_certificate: Portcullis does not use it")
	}
	gs := ea.GetGrpcService()
	if gs.GetEnvoyGrpc().GetClusterName() != "portcullis" {
		t.Fatalf("grpc_service = %v, want envoy_grpc to cluster portcullis", gs)
	}
	if gs.GetTimeout().AsDuration() <= 3*time.Second {
		t.Errorf("grpc_service.timeout %v must exceed the samples' authorizer timeout (3s)", gs.GetTimeout().AsDuration())
	}

	var pc *clusterv3.Cluster
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == "portcullis" {
			pc = c
		}
	}
	if pc == nil {
		t.Fatal("no cluster named portcullis")
	}
	var opts upstreamhttpv3.HttpProtocolOptions
	a := pc.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	if a == nil || a.UnmarshalTo(&opts) != nil || opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		t.Error("cluster portcullis must use HTTP/2 (typed_extension_protocol_options explicit_http_config.http2_protocol_options)")
	}
	for _, e := range pc.GetLoadAssignment().GetEndpoints() {
		for _, le := range e.GetLbEndpoints() {
			if p := le.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue(); p != grpcPort {
				t.Errorf("cluster portcullis endpoint port %d, want %d", p, grpcPort)
			}
		}
	}
}

// TestIstioSamples checks that the AuthorizationPolicy names the provider the mesh config
// registers, and that the provider points at Portcullis' gRPC port, fail closed.
func TestIstioSamples(t *testing.T) {
	var mesh struct {
		Kind string `json:"kind"`
		Spec struct {
			MeshConfig struct {
				ExtensionProviders []struct {
					Name              string `json:"name"`
					EnvoyExtAuthzGrpc *struct {
						Service  string `json:"service"`
						Port     int    `json:"port"`
						FailOpen bool   `json:"failOpen"`
					} `json:"envoyExtAuthzGrpc"`
				} `json:"extensionProviders"`
			} `json:"meshConfig"`
		} `json:"spec"`
	}
	var policy struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			Action   string `json:"action"`
			Provider struct {
				Name string `json:"name"`
			} `json:"provider"`
			Rules []struct {
				To []struct {
					Operation struct {
						Paths []string `json:"paths"`
					} `json:"operation"`
				} `json:"to"`
			} `json:"rules"`
		} `json:"spec"`
	}
	readYAML(t, filepath.Join(samples, "istio", "meshconfig.yaml"), &mesh)
	readYAML(t, filepath.Join(samples, "istio", "authorizationpolicy.yaml"), &policy)

	providers := map[string]bool{}
	for _, p := range mesh.Spec.MeshConfig.ExtensionProviders {
		g := p.EnvoyExtAuthzGrpc
		if g == nil {
			continue
		}
		providers[p.Name] = true
		if g.Port != grpcPort || g.Service == "" || g.FailOpen {
			t.Errorf("provider %q: envoyExtAuthzGrpc %+v, want a service on port %d with failOpen false", p.Name, *g, grpcPort)
		}
	}
	if len(providers) == 0 {
		t.Fatal("meshconfig.yaml registers no envoyExtAuthzGrpc extension provider")
	}
	if policy.Kind != "AuthorizationPolicy" || policy.APIVersion != "security.istio.io/v1" {
		t.Errorf("authorizationpolicy.yaml is a %s %s", policy.APIVersion, policy.Kind)
	}
	if policy.Spec.Action != "CUSTOM" {
		t.Errorf("action = %q, want CUSTOM", policy.Spec.Action)
	}
	if !providers[policy.Spec.Provider.Name] {
		t.Errorf("AuthorizationPolicy provider %q is not among the mesh config's providers %v", policy.Spec.Provider.Name, providers)
	}
	paths := 0
	for _, r := range policy.Spec.Rules {
		for _, to := range r.To {
			paths += len(to.Operation.Paths)
		}
	}
	if paths == 0 {
		t.Error("the AuthorizationPolicy has no rule with paths")
	}
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
