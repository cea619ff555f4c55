package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IdentityLocation says where in the request an identity value is read.
// +kubebuilder:validation:Enum=Header;Query;Cookie;Method;Path
type IdentityLocation string

// Identity locations.
const (
	IdentityHeader IdentityLocation = "Header"
	IdentityQuery  IdentityLocation = "Query"
	IdentityCookie IdentityLocation = "Cookie"
	IdentityMethod IdentityLocation = "Method"
	IdentityPath   IdentityLocation = "Path"
)

// IdentitySource is one request value sent to the authorizer and made part of the cache key.
// +kubebuilder:validation:XValidation:rule="self.__in__ in ['Header', 'Query', 'Cookie'] ? has(self.name) : !has(self.name)",message="name is required for Header, Query and Cookie sources and not allowed for Method and Path"
type IdentitySource struct {
	// in is where the value is read: Header, Query, Cookie, Method or Path.
	// +required
	In IdentityLocation `json:"in"`

	// name of the header (case-insensitive), query parameter or cookie.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	Name string `json:"name,omitempty"`
}

// AuthorizerCache sets how long the authorizer's answers are reused.
// +kubebuilder:validation:XValidation:rule="!has(self.denyTTL) || self.denyTTL <= (has(self.ttl) ? self.ttl : duration('30s'))",message="denyTTL must not exceed ttl"
type AuthorizerCache struct {
	// ttl is how long an allow answer is reused for the same identity values: 0s to 3600s,
	// 0s disables the cache. Default 30s. Durations are written as Go durations such as 30s,
	// 1m30s or 500ms.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:Pattern=`^(0|-?([0-9]{1,5}(\.[0-9]{1,9})?(h|m|s|ms|us|µs|μs|ns)){1,4})$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('3600s')",message="ttl must be between 0s and 3600s"
	TTL *metav1.Duration `json:"ttl,omitempty"`

	// denyTTL is how long a deny answer is reused; at most ttl. Default 0s (deny answers are
	// not cached).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:Pattern=`^(0|-?([0-9]{1,5}(\.[0-9]{1,9})?(h|m|s|ms|us|µs|μs|ns)){1,4})$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="denyTTL must not be negative"
	DenyTTL *metav1.Duration `json:"denyTTL,omitempty"`

	// maxEntries bounds the answers kept for this authorizer; the least recently used go
	// first. 1..1000000, default 10000.
	// +optional
	// +kubebuilder:default=10000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MaxEntries *int32 `json:"maxEntries,omitempty"`
}

// SecretKeySelector names one key of a Secret in the same namespace.
type SecretKeySelector struct {
	// name of the Secret; it must carry the label auth.portcullis.dev/credential: "true".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// key within the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// UserDataSource says where userData is read from.
type UserDataSource struct {
	// secretKeyRef selects a key of a labelled Secret in the same namespace.
	// +required
	SecretKeyRef SecretKeySelector `json:"secretKeyRef"`
}

// ResponseFormat names the answer format the authorizer speaks.
// +kubebuilder:validation:Enum=APIG;Tencent;MPaaS
type ResponseFormat string

// Response formats (DESIGN.md §4).
const (
	ResponseFormatAPIG    ResponseFormat = "APIG"
	ResponseFormatTencent ResponseFormat = "Tencent"
	ResponseFormatMPaaS   ResponseFormat = "MPaaS"
)

// FailurePolicy says what happens when the authorizer cannot be reached.
// +kubebuilder:validation:Enum=Deny;Allow
type FailurePolicy string

// Failure policies.
const (
	FailurePolicyDeny  FailurePolicy = "Deny"
	FailurePolicyAllow FailurePolicy = "Allow"
)

// CustomAuthorizerSpec describes an HTTP function that decides the second factor.
// +kubebuilder:validation:XValidation:rule="!(has(self.userData) && has(self.userDataFrom))",message="set userData or userDataFrom, not both"
type CustomAuthorizerSpec struct {
	// url the request event is POSTed to; http or https, no redirects are followed.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="url must be an absolute http or https URL with a host"
	URL string `json:"url"`

	// identitySources are the request values sent to the function and used as the cache key:
	// 1..8, each (in, name) at most once. A request missing any of them is denied with 401
	// without calling the function.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:XValidation:rule="self.all(x, self.exists_one(y, y.__in__ == x.__in__ && (!has(x.name) || (has(y.name) && (x.__in__ == 'Query' ? y.name == x.name : y.name.lowerAscii() == x.name.lowerAscii())))))",message="identitySources must be unique: each (in, name) at most once (header and cookie names are case-insensitive)"
	IdentitySources []IdentitySource `json:"identitySources"`

	// cache sets how long answers are reused. Default: ttl 30s, denyTTL 0s, maxEntries 10000.
	// +optional
	// +kubebuilder:default={}
	Cache *AuthorizerCache `json:"cache,omitempty"`

	// timeout bounds one call to the function, 10ms..30s (a Go duration such as 500ms).
	// Default 3s.
	// +optional
	// +kubebuilder:default="3s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:Pattern=`^(0|-?([0-9]{1,5}(\.[0-9]{1,9})?(h|m|s|ms|us|µs|μs|ns)){1,4})$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10ms') && duration(self) <= duration('30s')",message="timeout must be between 10ms and 30s"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// sendBody includes the request body (up to --max-body-bytes, base64) in the event.
	// +optional
	SendBody bool `json:"sendBody,omitempty"`

	// userData is sent to the function as user_data; at most 2048 characters.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	UserData string `json:"userData,omitempty"`

	// userDataFrom reads user_data from a Secret key instead of spelling it here.
	// +optional
	UserDataFrom *UserDataSource `json:"userDataFrom,omitempty"`

	// responseFormat is the answer format: APIG, Tencent or MPaaS. Default APIG.
	// +optional
	// +kubebuilder:default=APIG
	ResponseFormat ResponseFormat `json:"responseFormat,omitempty"`

	// failurePolicy: Deny (default) denies when the function is unreachable; Allow lets the
	// request through, marked upstream with x-portcullis-degraded: true.
	// +optional
	// +kubebuilder:default=Deny
	FailurePolicy FailurePolicy `json:"failurePolicy,omitempty"`
}

// CustomAuthorizerStatus is the observed state of a CustomAuthorizer.
type CustomAuthorizerStatus struct {
	// conditions: Ready, with reason Valid, InvalidURL or SecretNotFound.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// CustomAuthorizer is an HTTP function deciding the second factor, with a result cache.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cauthz,categories=portcullis
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Format",type=string,JSONPath=`.spec.responseFormat`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CustomAuthorizer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired authorizer.
	// +required
	Spec CustomAuthorizerSpec `json:"spec"`
	// status is written by the elected Portcullis replica.
	// +optional
	Status CustomAuthorizerStatus `json:"status,omitempty"`
}

// CustomAuthorizerList is a list of CustomAuthorizers.
//
// +kubebuilder:object:root=true
type CustomAuthorizerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CustomAuthorizer `json:"items"`
}

func init() {
	SchemeBuilder.Register(&CustomAuthorizer{}, &CustomAuthorizerList{})
}
