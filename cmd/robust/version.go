package main

import (
	"fmt"
	"runtime/debug"
)

// version is robust's release; builds from a checkout add the VCS revision.
const version = "0.1.0-dev"

// VersionCmd prints versions.
type VersionCmd struct{}

// Run prints robust's version, then the ONNX Runtime library it finds (or why
// it finds none).
func (VersionCmd) Run(g *Globals) error {
	fmt.Fprintln(g.stdout, versionLine())
	env, err := g.runtime()
	if err != nil {
		fmt.Fprintf(g.stdout, "onnxruntime: not available: %v\n", err)
		return nil
	}
	fmt.Fprintf(g.stdout, "onnxruntime %s (%s, device %s)\n", env.Version(), env.Library(), env.Device())
	return nil
}

// robustVersion returns the release and, for builds from a checkout, the
// VCS revision: "0.1.0-dev (3ef8f4f1a2b3)".
func robustVersion() string {
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " (" + s.Value[:12] + ")"
			}
		}
	}
	return version + rev
}

// versionLine is what robust --version prints: "robust VERSION".
func versionLine() string { return "robust " + robustVersion() }
