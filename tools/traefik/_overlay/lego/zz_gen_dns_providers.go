// Replaces, in the copy of lego's module that ../build.sh builds with, the one file of lego's providers/dns package that
// Traefik's ACME provider uses: the generated factory importing every DNS provider's SDK. Fourteen of those
// SDK modules are not served by the module proxy this project builds from, so the factory cannot be
// compiled. The tests use no ACME certificate resolver; a Traefik built here names this when one asks for
// a DNS-01 challenge provider, instead of failing to build at all.
package dns

import (
	"fmt"

	"github.com/go-acme/lego/v5/challenge"
)

// NewDNSChallengeProviderByName has the signature of lego's generated factory, and no provider.
func NewDNSChallengeProviderByName(name string) (challenge.Provider, error) {
	return nil, fmt.Errorf("DNS challenge provider %q is not built into this Traefik (envoy-thanos tools/traefik: its SDK modules are not served by the module proxy)", name)
}
