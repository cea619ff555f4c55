// Package v1alpha1 holds the Portcullis API: Credential (factor 1, an app identity),
// CustomAuthorizer (factor 2, an HTTP function) and APIBinding (which routes need which
// factors), in the group auth.portcullis.dev.
//
// +kubebuilder:object:generate=true
// +groupName=auth.portcullis.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every Portcullis object.
	GroupVersion = schema.GroupVersion{Group: "auth.portcullis.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the Portcullis kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the Portcullis kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// CredentialSecretLabel marks the Secrets Portcullis reads: credential key material and the
// Secrets a CustomAuthorizer takes its userData from. Only Secrets with this label set to
// "true" are cached, so an unlabelled Secret is reported as not found.
const CredentialSecretLabel = "auth.portcullis.dev/credential"

// Condition types.
const (
	// ConditionReady is True when the object takes part in decisions as written.
	ConditionReady = "Ready"
	// ConditionAccepted is True when an APIBinding owns every route it claims.
	ConditionAccepted = "Accepted"
	// ConditionResolvedRefs is True when every object an APIBinding names exists and is ready.
	ConditionResolvedRefs = "ResolvedRefs"
)

// Condition reasons. They are a closed set: tools may match on them.
const (
	ReasonValid              = "Valid"
	ReasonSecretNotFound     = "SecretNotFound"
	ReasonSecretInvalid      = "SecretInvalid"
	ReasonAppKeyConflict     = "AppKeyConflict"
	ReasonExpired            = "Expired"
	ReasonDisabled           = "Disabled"
	ReasonInvalidURL         = "InvalidURL"
	ReasonAccepted           = "Accepted"
	ReasonRouteConflict      = "RouteConflict"
	ReasonResolvedRefs       = "ResolvedRefs"
	ReasonCredentialNotFound = "CredentialNotFound"
	ReasonAuthorizerNotFound = "AuthorizerNotFound"
	ReasonAuthorizerNotReady = "AuthorizerNotReady"
	// ReasonInvalid: the object breaks a rule the API server would have checked (objects
	// read from files are not checked by it).
	ReasonInvalid = "Invalid"
)
