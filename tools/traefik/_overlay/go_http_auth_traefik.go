// Added, by ../build.sh, to github.com/abbot/go-http-auth v0.4.0: the two functions Traefik v3.7 calls that only
// its fork of that module (github.com/containous/go-http-auth, which its go.mod replaces it with) has. The
// module proxy this project builds from does not serve the fork, so the build uses the last release of the
// original and adds these, written here from what Traefik's basic and digest auth middlewares expect of them.
package auth

import (
	"net/http"
	"strings"
)

// CheckSecret reports whether password matches secret, an htpasswd entry hashed in any of the formats
// BasicAuth.CheckAuth accepts.
func CheckSecret(password, secret string) bool {
	compare := compareFuncs[0].compare
	for _, cmp := range compareFuncs[1:] {
		if strings.HasPrefix(secret, cmp.prefix) {
			compare = cmp.compare
			break
		}
	}
	return compare([]byte(secret), []byte(password)) == nil
}

// RequireAuthStale answers like RequireAuth, marking the client's nonce stale (RFC 7616 section 3.3) so that
// it retries with a fresh one without asking the user again.
func (a *DigestAuth) RequireAuthStale(w http.ResponseWriter, r *http.Request) {
	a.RequireAuth(staleChallenge{w, a.Headers.V().Authenticate}, r)
}

// staleChallenge appends stale=true to the challenge header RequireAuth sets, as the status goes out.
type staleChallenge struct {
	http.ResponseWriter
	header string
}

func (w staleChallenge) WriteHeader(code int) {
	w.Header().Set(w.header, w.Header().Get(w.header)+", stale=true")
	w.ResponseWriter.WriteHeader(code)
}
