package deploy

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

// meshGrants lists the chart's mesh RBAC as "Kind namespace resource:name,name".
func meshGrants(objs []object) []string {
	var out []string
	for _, o := range ofKind(objs, "Role", "ClusterRole") {
		if !strings.HasSuffix(o.name(), "-mesh") {
			continue
		}
		for _, r := range list(o, "rules") {
			verbs := stringList(r, "verbs")
			if !slices.Equal(verbs, []string{"list", "watch"}) {
				out = append(out, fmt.Sprintf("%s has verbs %v", o, verbs))
			}
			for _, res := range stringList(r, "resources") {
				out = append(out, fmt.Sprintf("%s %s %s:%s", o.kind(), o.namespace(), res, strings.Join(stringList(r, "resourceNames"), ",")))
			}
		}
	}
	sort.Strings(out)
	return out
}

// The presets render into the configuration certwatch reads, and their RBAC
// is list and watch on exactly the objects they watch, by name.
func TestChartMesh(t *testing.T) {
	for _, c := range []struct {
		name   string
		args   []string
		grants []string
		mesh   string // the rendered kubernetes.mesh, as Go prints it
	}{
		{"off by default", nil, nil, "<nil>"},
		{"istio", []string{"--set", "mesh.istio.enabled=true"},
			[]string{"ClusterRole  configmaps:istio-ca-root-cert", "Role istio-system secrets:cacerts,istio-ca-secret"},
			"istio istio-system"},
		{"linkerd in its own namespace, without other kinds", []string{"--set", "mesh.linkerd.enabled=true", "--set", "mesh.linkerd.namespace=l5d", "--set", "config.kubernetes=null"},
			[]string{"Role l5d configmaps:linkerd-identity-trust-roots", "Role l5d secrets:linkerd-identity-issuer"},
			"linkerd l5d"},
		{"both, set in config", []string{"--set", "config.kubernetes.mesh.istio.enabled=true", "--set", "config.kubernetes.mesh.istio.namespace=mesh",
			"--set", "config.kubernetes.mesh.linkerd.enabled=true", "--set", "config.kubernetes.mesh.linkerd.namespace=mesh"},
			[]string{"ClusterRole  configmaps:istio-ca-root-cert", "Role mesh configmaps:linkerd-identity-trust-roots", "Role mesh secrets:cacerts,istio-ca-secret,linkerd-identity-issuer"},
			"istio mesh linkerd mesh"},
	} {
		t.Run(c.name, func(t *testing.T) {
			objs := mustRender(t, "cw", c.args...)
			if got := meshGrants(objs); !slices.Equal(got, c.grants) {
				t.Errorf("mesh RBAC\n got %q\nwant %q", got, c.grants)
			}
			deployment := one(t, objs, "Deployment", "")
			_, cfg := renderedConfig(t, objs, deployment)
			if automount, _ := get(deployment, "spec", "template", "spec", "automountServiceAccountToken").(bool); automount != (cfg.Kubernetes != nil) {
				t.Errorf("automountServiceAccountToken %v with a Kubernetes source: %v", automount, cfg.Kubernetes != nil)
			}
			got := "<nil>"
			if cfg.Kubernetes != nil && cfg.Kubernetes.Mesh != nil {
				var parts []string
				if m := cfg.Kubernetes.Mesh; m.IstioEnabled() {
					parts = append(parts, "istio", m.Istio.Namespace)
				}
				if m := cfg.Kubernetes.Mesh; m.LinkerdEnabled() {
					parts = append(parts, "linkerd", m.Linkerd.Namespace)
				}
				got = strings.Join(parts, " ")
			}
			if got != c.mesh {
				t.Errorf("rendered kubernetes.mesh %q, want %q", got, c.mesh)
			}
			for _, o := range ofKind(objs, "RoleBinding", "ClusterRoleBinding") {
				if strings.HasSuffix(o.name(), "-mesh") && str(o, "roleRef", "name") != o.name() {
					t.Errorf("%s binds %s", o, str(o, "roleRef", "name"))
				}
			}
		})
	}
	t.Run("rbac.create=false", func(t *testing.T) {
		if got := meshGrants(mustRender(t, "cw", "--set", "mesh.istio.enabled=true", "--set", "rbac.create=false")); len(got) != 0 {
			t.Errorf("rendered %v", got)
		}
	})
	t.Run("a misspelt key fails", func(t *testing.T) {
		if _, err := helmTemplate(t, "cw", "--set", "mesh.istio.enable=true"); err == nil {
			t.Error("mesh.istio.enable was accepted")
		}
	})
}
