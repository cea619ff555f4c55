package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PathMatchType says how a route's path is compared with the request path.
// +kubebuilder:validation:Enum=Exact;PathPrefix
type PathMatchType string

// Path match types.
const (
	// PathMatchExact matches the path exactly.
	PathMatchExact PathMatchType = "Exact"
	// PathMatchPrefix matches the path and everything below it, segment by segment:
	// /orders matches /orders and /orders/7, never /ordersX.
	PathMatchPrefix PathMatchType = "PathPrefix"
)

// HTTPMethod is an upper-case HTTP method.
// +kubebuilder:validation:Enum=GET;HEAD;POST;PUT;PATCH;DELETE;OPTIONS;CONNECT;TRACE
type HTTPMethod string

// Route is one path (and optionally a set of methods) an APIBinding protects.
type Route struct {
	// path starts with "/" and is in canonical form: no empty, "." or ".." segments, no
	// percent-encoding, query or fragment. At most 1024 characters.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="path must start with '/'"
	// +kubebuilder:validation:XValidation:rule="!self.contains('//') && !self.contains('/./') && !self.contains('/../') && !self.endsWith('/.') && !self.endsWith('/..')",message="path must be canonical: no empty, '.' or '..' segments"
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9/._~!$&\\'()*+,;=:@-]*$')",message="path may hold only unreserved characters, sub-delimiters, ':', '@' and '/' (no '%', '?', '#', '\\\\' or spaces)"
	Path string `json:"path"`

	// match is Exact or PathPrefix (segment-aware). Default PathPrefix.
	// +optional
	// +kubebuilder:default=PathPrefix
	Match PathMatchType `json:"match,omitempty"`

	// methods limits the route to these methods; empty means every method. A route naming
	// the method wins over one without a method list.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=9
	Methods []HTTPMethod `json:"methods,omitempty"`
}

// AppAuthMethod is a way of presenting an app credential.
// +kubebuilder:validation:Enum=Signature;AppCode
type AppAuthMethod string

// App authentication methods.
const (
	// AppAuthSignature is a request signed with SDK-HMAC-SHA256.
	AppAuthSignature AppAuthMethod = "Signature"
	// AppAuthAppCode is an AppCode in X-App-Code (alias X-Apig-AppCode).
	AppAuthAppCode AppAuthMethod = "AppCode"
)

// AppAuth is the first factor of an APIBinding.
// +kubebuilder:validation:XValidation:rule="(has(self.credentials) && size(self.credentials) > 0) || has(self.credentialSelector)",message="app needs credentials or a credentialSelector"
type AppAuth struct {
	// methods are the accepted ways to present the credential. Default [Signature].
	// +optional
	// +listType=set
	// +kubebuilder:default={Signature}
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=2
	Methods []AppAuthMethod `json:"methods,omitempty"`

	// credentials are bound by name (Credentials in the same namespace).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	Credentials []string `json:"credentials,omitempty"`

	// credentialSelector binds the Credentials in the same namespace whose labels match.
	// +optional
	CredentialSelector *metav1.LabelSelector `json:"credentialSelector,omitempty"`

	// allowUnsignedPayload accepts X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD, so the body is
	// not part of the signature.
	// +optional
	AllowUnsignedPayload bool `json:"allowUnsignedPayload,omitempty"`
}

// ContextHeader maps one authorizer context key to one upstream header.
type ContextHeader struct {
	// context is the key in the authorizer's context.
	// +required
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_-]{0,31}$`
	Context string `json:"context"`
	// header is the lower-case upstream header name.
	// +required
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9-]*$`
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('x-portcullis-') && !(self in ['host', 'authorization', 'content-length', 'transfer-encoding', 'connection', 'te', 'upgrade', 'x-app-code', 'x-apig-appcode'])",message="header must not be host, authorization, a hop-by-hop header, an AppCode header or an x-portcullis- header"
	Header string `json:"header"`
}

// Upstream says which authorizer context reaches the upstream service, as headers.
type Upstream struct {
	// contextHeaderPrefix, when set, passes every context key k as header <prefix><k>
	// (lower-cased). Incoming headers with this prefix are removed first.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9-]*$`
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('x-portcullis-')",message="contextHeaderPrefix must not start with x-portcullis-"
	ContextHeaderPrefix string `json:"contextHeaderPrefix,omitempty"`

	// contextHeaders are explicit mappings from a context key to a header; each header at
	// most once.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y.header == x.header))",message="each contextHeaders header may appear only once"
	ContextHeaders []ContextHeader `json:"contextHeaders,omitempty"`
}

// APIBindingSpec says which routes need which factors.
// +kubebuilder:validation:XValidation:rule="has(self.app) || has(self.customAuthorizer) || (has(self.anonymous) && self.anonymous)",message="set app and/or customAuthorizer, or anonymous: true for a public route"
// +kubebuilder:validation:XValidation:rule="!(has(self.anonymous) && self.anonymous) || (!has(self.app) && !has(self.customAuthorizer))",message="anonymous: true cannot be combined with app or customAuthorizer"
type APIBindingSpec struct {
	// hosts the routes apply to: 1..16 lower-case DNS names, or "*." wildcards that match one
	// or more labels in front of the suffix, never the suffix itself.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^(\\\\*\\\\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\\\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')",message="hosts must be lower-case DNS names such as api.example.com, or wildcards such as *.example.com"
	Hosts []string `json:"hosts"`

	// routes are the paths protected: 1..64.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Routes []Route `json:"routes"`

	// app is the first factor: which credentials are accepted, and how they are presented.
	// +optional
	App *AppAuth `json:"app,omitempty"`

	// customAuthorizer names the CustomAuthorizer (same namespace) deciding the second factor.
	// +optional
	CustomAuthorizer *LocalObjectReference `json:"customAuthorizer,omitempty"`

	// anonymous must be true, and is only allowed, when neither factor is set: the routes
	// are public. This guards against a route opened by accident.
	// +optional
	Anonymous bool `json:"anonymous,omitempty"`

	// upstream maps the authorizer's context to upstream headers.
	// +optional
	Upstream *Upstream `json:"upstream,omitempty"`
}

// APIBindingStatus is the observed state of an APIBinding.
type APIBindingStatus struct {
	// conditions: Accepted (reason Accepted or RouteConflict), ResolvedRefs (ResolvedRefs,
	// CredentialNotFound, AuthorizerNotFound, AuthorizerNotReady) and Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// APIBinding protects routes on hosts with an app credential and/or a custom authorizer.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=apib,categories=portcullis
// +kubebuilder:printcolumn:name="Hosts",type=string,JSONPath=`.spec.hosts`
// +kubebuilder:printcolumn:name="Authorizer",type=string,JSONPath=`.spec.customAuthorizer.name`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type APIBinding struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired binding.
	// +required
	Spec APIBindingSpec `json:"spec"`
	// status is written by the elected Portcullis replica.
	// +optional
	Status APIBindingStatus `json:"status,omitempty"`
}

// APIBindingList is a list of APIBindings.
//
// +kubebuilder:object:root=true
type APIBindingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []APIBinding `json:"items"`
}

func init() {
	SchemeBuilder.Register(&APIBinding{}, &APIBindingList{})
}
