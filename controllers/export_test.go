package controllers

import (
	"context"

	"github.com/portcullis-dev/portcullis/authz/compile"
)

// Has reports whether the policy's inputs hold the object under key, whether or not a build
// has used it yet.
func (p *Policy) Has(key compile.ObjectKey) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.in.Has(key)
}

// Write puts st on its object as the elected replica does after a build.
func (w *StatusWriter) Write(ctx context.Context, st compile.ObjectStatus) (string, error) {
	return w.write(ctx, st)
}
