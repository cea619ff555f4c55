package controllers

import "github.com/portcullis-dev/portcullis/authz/compile"

// Has reports whether the policy's inputs hold the object under key, whether or not a build
// has used it yet.
func (p *Policy) Has(key compile.ObjectKey) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.in.Has(key)
}
