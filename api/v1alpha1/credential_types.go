package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// name of the referent, in the namespace of the referring object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// CredentialSpec describes an app identity: the first factor.
type CredentialSpec struct {
	// secretRef names the Secret, in the same namespace and labelled
	// auth.portcullis.dev/credential: "true", that holds the key material:
	// appKey (required; the public id, unique across the cluster), appSecret (for signed
	// requests; at least 16 bytes) and appCodes (optional; newline-separated, at most 5,
	// each 32..180 characters, plain or "sha256:<64 hex>" to store a code hashed).
	// +required
	SecretRef LocalObjectReference `json:"secretRef"`

	// disabled rejects every request presenting this credential while true.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// expiresAt is the instant (RFC 3339) after which the credential is rejected.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// allowedCIDRs, when set, limits the source addresses that may present this credential.
	// Each entry is a CIDR such as 10.0.0.0/8 or 2001:db8::/32; at most 32.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="allowedCIDRs entries must be CIDRs such as 10.0.0.0/8"
	AllowedCIDRs []string `json:"allowedCIDRs,omitempty"`

	// metadata is passed to the custom authorizer (requestContext.credentialMetadata) and
	// available upstream; at most 32 entries, keys up to 63 and values up to 256 characters.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() <= 63 && self[k].size() <= 256)",message="metadata keys are at most 63 and values at most 256 characters"
	Metadata map[string]string `json:"metadata,omitempty"`
}

// CredentialStatus is the observed state of a Credential.
type CredentialStatus struct {
	// conditions: Ready, with reason Valid, SecretNotFound, SecretInvalid, AppKeyConflict,
	// Expired or Disabled.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// appKey is the public id read from the Secret, shown for convenience.
	// +optional
	AppKey string `json:"appKey,omitempty"`

	// boundBindings counts the APIBindings that accept this credential.
	// +optional
	BoundBindings int32 `json:"boundBindings,omitempty"`
}

// Credential is an app identity (factor 1): a key pair for signed requests and/or AppCodes,
// read from a labelled Secret.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cred,categories=portcullis
// +kubebuilder:printcolumn:name="AppKey",type=string,JSONPath=`.status.appKey`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Bindings",type=integer,JSONPath=`.status.boundBindings`
// +kubebuilder:printcolumn:name="Expires",type=date,JSONPath=`.spec.expiresAt`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Credential struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired credential.
	// +required
	Spec CredentialSpec `json:"spec"`
	// status is written by the elected Portcullis replica.
	// +optional
	Status CredentialStatus `json:"status,omitempty"`
}

// CredentialList is a list of Credentials.
//
// +kubebuilder:object:root=true
type CredentialList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Credential `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Credential{}, &CredentialList{})
}
