// Package console is PROST's web console: the single-page app built from
// web/ (React, TypeScript, Tailwind; decision 0013), embedded in the binary,
// and the server-side sessions it signs in with. The routes that serve both
// are in consolehttp; the gateway accepts a session in place of API
// credentials on the tenant and admin APIs, so the console talks to PROST
// through the public API only.
package console

import (
	"embed"
	"io/fs"
)

// dist holds dist/README.md always and dist/app/ once `make console` has
// built the app (it is not kept in git).
//
//go:embed dist
var dist embed.FS

// Assets returns the built app (index.html, assets/...), and false when this
// binary was built without it.
func Assets() (fs.FS, bool) {
	app, err := fs.Sub(dist, "dist/app")
	if err != nil {
		return nil, false
	}
	if _, err := fs.Stat(app, "index.html"); err != nil {
		return nil, false
	}
	return app, true
}
