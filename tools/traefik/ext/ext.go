// Package ext stands in for Traefik's nested module github.com/traefik/traefik/dynamic/ext (see ../go.mod for
// why it is needed). Traefik v3.7 embeds these two types, empty upstream, in dynamic.HTTPConfiguration and
// dynamic.Router as an extension point for builds other than the open-source one; empty here too, the
// configuration they are part of is Traefik's own.
package ext

// HTTP is embedded in Traefik's dynamic.HTTPConfiguration.
type HTTP struct{}

// Router is embedded in Traefik's dynamic.Router.
type Router struct{}
