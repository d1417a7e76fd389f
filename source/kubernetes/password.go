package kubernetes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"

	"github.com/certwatch/certwatch/config"
	"github.com/certwatch/certwatch/source"
)

// ResourcePasswordSecrets is the informer of secrets.password_secret in the
// exporter's own metrics: a resource value of its own, so that its series
// never share labels with the Secrets informer of the same namespace.
const ResourcePasswordSecrets = "secrets/password"

const (
	// passwordSyncWait bounds how long the other informers wait for the
	// password Secrets at start.
	passwordSyncWait = 10 * time.Second
	// Retries of a keystore Secret that could not be parsed again after its
	// password changed.
	reparseRetryMin = time.Second
	reparseRetryMax = 5 * time.Minute
)

// passwordEntry is the password Secret of one namespace, as last seen.
type passwordEntry struct {
	exists          bool
	uid             types.UID
	resourceVersion string
	hasKey          bool
	value           []byte // never logged
	gen             uint64 // s.pwGen when this state began
}

// passwordUse says that a Secret's values were opened with the password of
// password_secret, and with which version of it.
type passwordUse struct {
	namespace string // of the password Secret
	gen       uint64
	findings  []int // the findings that depend on it
}

// addPasswordWatches watches the Secrets named by secrets.password_secret:
// in its namespace, or in every namespace the Secrets selection watches.
func (s *Source) addPasswordWatches() {
	ps := s.cfg.Secrets.PasswordSecret
	namespaces := []string{ps.Namespace}
	if ps.Namespace == "" {
		namespaces = namespacesOf(s.cfg.Secrets.Selection)
	}
	fieldSelector := fields.OneTermEqualSelector("metadata.name", ps.Name).String()
	for _, ns := range namespaces {
		lw := listWatchOf(s.client.CoreV1().Secrets(ns), "", fieldSelector)
		s.addWatch(ResourcePasswordSecrets, ns, lw, s.client, &corev1.Secret{}, s.transformPasswordSecret, func(m metav1.Object) {
			s.deletePassword(m.GetNamespace(), m.GetUID())
		})
	}
}

// transformPasswordSecret keeps the password's value in s.passwords and
// nothing of the Secret in the informer cache but its metadata.
func (s *Source) transformPasswordSecret(obj any) any {
	sec, ok := obj.(*corev1.Secret)
	if !ok {
		return obj
	}
	ps := s.cfg.Secrets.PasswordSecret
	// The name check repeats the field selector for clients that ignore it.
	if sec.Name == ps.Name && (ps.Namespace != "" || !s.namespaceExcluded(s.cfg.Secrets.Selection, sec.Namespace)) {
		value, hasKey := sec.Data[ps.Key]
		s.setPassword(sec.Namespace, sec.UID, sec.ResourceVersion, bytes.Clone(trimNewline(value)), hasKey)
	}
	stripMeta(&sec.ObjectMeta)
	sec.Data, sec.StringData = nil, nil
	return sec
}

// setPassword records a password Secret's state and has the Secrets opened
// with the previous one parsed again when the password changed.
func (s *Source) setPassword(ns string, uid types.UID, resourceVersion string, value []byte, hasKey bool) {
	s.pwMu.Lock()
	e := s.passwords[ns]
	if e != nil && e.exists && e.uid == uid && e.resourceVersion == resourceVersion {
		s.pwMu.Unlock()
		return // the transform ran again for one version
	}
	changed := e == nil || !e.exists || e.hasKey != hasKey || !bytes.Equal(e.value, value)
	next := &passwordEntry{exists: true, uid: uid, resourceVersion: resourceVersion, hasKey: hasKey, value: value}
	if changed {
		s.pwGen++
		next.gen = s.pwGen
	} else {
		next.gen = e.gen
	}
	s.passwords[ns] = next
	s.pwMu.Unlock()
	if changed {
		s.enqueueDependents(ns)
	}
}

// deletePassword forgets a deleted password Secret, unless the one recorded
// is already its successor (deleted and created again: a new UID).
func (s *Source) deletePassword(ns string, uid types.UID) {
	s.pwMu.Lock()
	e := s.passwords[ns]
	if e == nil || !e.exists || e.uid != uid {
		s.pwMu.Unlock()
		return
	}
	s.pwGen++
	s.passwords[ns] = &passwordEntry{gen: s.pwGen}
	s.pwMu.Unlock()
	s.enqueueDependents(ns)
}

func (s *Source) password(ns string) passwordEntry {
	s.pwMu.Lock()
	defer s.pwMu.Unlock()
	if e := s.passwords[ns]; e != nil {
		return *e
	}
	return passwordEntry{}
}

func (s *Source) passwordGen(ns string) uint64 { return s.password(ns).gen }

func (s *Source) enqueueDependents(ns string) {
	s.mu.RLock()
	keys := make([]string, 0, len(s.dependents[ns]))
	for k := range s.dependents[ns] {
		keys = append(keys, k)
	}
	s.mu.RUnlock()
	for _, k := range keys {
		s.enqueue(k)
	}
}

// recheckPassword queues a Secret just stored when the password changed
// while it was being parsed: setPassword may have looked for dependents
// before this one was recorded.
func (s *Source) recheckPassword(key string, use *passwordUse) {
	if use != nil && s.passwordGen(use.namespace) != use.gen {
		s.enqueue(key)
	}
}

func (s *Source) enqueue(key string) {
	if s.reparses != nil {
		s.reparses.Add(key)
	}
}

// runReparses parses again the Secrets whose password changed, until Stop.
func (s *Source) runReparses(ctx context.Context) {
	for {
		key, quit := s.reparses.Get()
		if quit {
			return
		}
		if err := s.reparse(ctx, key); err != nil && ctx.Err() == nil {
			s.logger.Debug("Keystore Secret will be read again", "key", key, "err", err)
			s.reparses.AddRateLimited(key)
		} else {
			s.reparses.Forget(key)
		}
		s.reparses.Done(key)
	}
}

var errVersionAhead = errors.New("the informer has not parsed the version read yet")

// reparse reads one Secret from the API server (the informer cache holds
// no data) and parses it with the current password. It runs only when a
// password changed, never during a scrape.
func (s *Source) reparse(ctx context.Context, key string) error {
	s.mu.RLock()
	p := s.objects[key]
	s.mu.RUnlock()
	if p == nil || p.password == nil || s.passwordGen(p.password.namespace) == p.password.gen {
		return nil // gone, no longer dependent, or already opened with the current password
	}
	ns, name, _ := strings.Cut(strings.TrimPrefix(key, KindSecret+"/"), "/")
	sec, err := s.fetchSecret(ctx, ns, name)
	if err != nil && ctx.Err() != nil {
		return err // stopping
	}
	if err != nil {
		class := classifyAPIError(err)
		if class == "" {
			class = source.ClassUnknown
		}
		s.failPasswordPlaces(key, p, source.Errorf(class, "reading Secret %s/%s again for its changed password: %w", ns, name, err))
		return err
	}
	if sec == nil {
		return nil // deleted: the informer forgets it
	}
	np := parsed{resourceVersion: sec.ResourceVersion}
	sw := s.cfg.Secrets
	if !s.namespaceExcluded(sw.Selection, sec.Namespace) && typeSelected(sw.Types, string(sec.Type)) {
		np.findings, np.password = s.secretFindings(sec)
	}
	s.mu.Lock()
	cur := s.objects[key]
	switch {
	case cur == nil:
		s.mu.Unlock()
		return nil
	case cur.resourceVersion != sec.ResourceVersion:
		// The informer holds another version: it parses (or has parsed)
		// the newer one itself; look again later in case that parse read
		// the old password.
		s.mu.Unlock()
		return errVersionAhead
	}
	s.putLocked(key, &np)
	s.mu.Unlock()
	s.recheckPassword(key, np.password)
	return nil
}

// fetchSecret reads one Secret with a list narrowed to its name: the list
// verb certwatch already holds, where a get would need a wider Role. It
// returns nil when the Secret does not exist.
func (s *Source) fetchSecret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	list, err := s.client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("listing Secret %s/%s: %w", ns, name, err)
	}
	for i := range list.Items {
		if list.Items[i].Name == name { // clients that ignore the field selector
			return &list.Items[i], nil
		}
	}
	return nil, nil
}

// failPasswordPlaces marks the places of a Secret that depend on its
// password as failed with err, keeping the certificates read before.
func (s *Source) failPasswordPlaces(key string, p *parsed, err error) {
	s.mu.Lock()
	if s.objects[key] != p {
		s.mu.Unlock()
		return // parsed again meanwhile
	}
	findings := make([]source.Finding, len(p.findings))
	copy(findings, p.findings)
	for _, i := range p.password.findings {
		findings[i].Err = err
	}
	// Same resourceVersion and password version: the next attempt still
	// reads the Secret again.
	s.objects[key] = &parsed{resourceVersion: p.resourceVersion, findings: findings, password: p.password}
	s.mu.Unlock()
	ps := s.cfg.Secrets.PasswordSecret
	s.logger.Warn("Cannot read keystore Secret again after its password changed", "kind", KindSecret,
		"target", strings.TrimPrefix(key, KindSecret+"/"), "password_secret", p.password.namespace+"/"+ps.Name, "password_key", ps.Key,
		"class", source.ClassOf(err), "err", err)
}

// keystoreFindings decodes a value that may need a password, with the
// password of password_secret, and says in each failure which Secret and
// key the password came from (never the password).
func (s *Source) keystoreFindings(place source.Place, data []byte, pwNamespace string, pw passwordEntry) []source.Finding {
	ps := s.cfg.Secrets.PasswordSecret
	var password []byte // nil: none (decode then tries the empty one)
	if pw.hasKey {
		password = pw.value
		if password == nil {
			password = []byte{} // an empty value is a password too
		}
	}
	out := s.decodeFindings(place, data, password, s.verify)
	var missing error
	switch {
	case !pw.exists:
		missing = source.Errorf(source.ClassWrongPassword, "no password: password_secret %s/%s does not exist", pwNamespace, ps.Name)
	case !pw.hasKey:
		missing = source.Errorf(source.ClassWrongPassword, "no password: password_secret %s/%s has no key %q", pwNamespace, ps.Name, ps.Key)
	}
	for i := range out {
		f := &out[i]
		switch {
		case missing != nil && (f.Err == nil || source.ClassOf(f.Err) == source.ClassWrongPassword):
			// Without its password a JKS still shows its certificates but
			// goes unchecked: that is a failure too.
			f.Err = missing
		case source.ClassOf(f.Err) == source.ClassWrongPassword:
			f.Err = fmt.Errorf("%w (password from password_secret %s/%s key %q)", f.Err, pwNamespace, ps.Name, ps.Key)
		}
	}
	s.logFailures(out)
	return out
}

// passwordNamespace is where the password of a Secret in ns lives.
func passwordNamespace(ps *config.PasswordSecret, ns string) string {
	if ps.Namespace != "" {
		return ps.Namespace
	}
	return ns
}
