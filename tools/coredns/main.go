// The CoreDNS the end-to-end tests run: CoreDNS's own main (coremain.Run) with only the plugins their
// Corefile uses, instead of the stock build's full plugin.cfg (cloud DNS providers, tracing, ...), which
// would add minutes to a cold build. The kubernetes plugin is the one a cluster's DNS runs.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
)

func main() {
	coremain.Run()
}
