package kubernetes

import (
	certificatesv1 "k8s.io/api/certificates/v1"

	"github.com/certwatch/certwatch/source"
)

// KindCSR is the "source" label of CertificateSigningRequest places.
const KindCSR = "csr"

// ResourceCSRs is the CertificateSigningRequest informer's resource.
const ResourceCSRs = "certificatesigningrequests"

// LabelSignerName is the CSR's spec.signerName
// (kubernetes.io/kube-apiserver-client-kubelet, kubernetes.io/kubelet-serving,
// or a custom signer).
const LabelSignerName = "signer_name"

// addCSRWatch watches CertificateSigningRequests cluster-wide.
func (s *Source) addCSRWatch() {
	csrs := s.client.CertificatesV1().CertificateSigningRequests()
	s.addWatch(ResourceCSRs, "", listWatchOf(csrs, "", ""), s.client, &certificatesv1.CertificateSigningRequest{}, s.transformCSR, s.forgetKind(KindCSR))
}

// transformCSR parses the certificate a signer issued for a CSR and strips
// the request, the certificate and the conditions from the cached object.
func (s *Source) transformCSR(obj any) any {
	csr, ok := obj.(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return obj
	}
	s.store(objectKey(KindCSR, "", csr.Name), csr.ResourceVersion, func() []source.Finding { return s.csrFindings(csr) })
	stripMeta(&csr.ObjectMeta)
	csr.Spec = certificatesv1.CertificateSigningRequestSpec{SignerName: csr.Spec.SignerName}
	csr.Status = certificatesv1.CertificateSigningRequestStatus{}
	return csr
}

// csrFindings reads status.certificate. A CSR still pending, denied or
// failed has none and is no place. The certificate is judged as a
// Secret's tls.crt without a ca.crt is: against kubernetes.ca_file (the
// cluster CA, for kubelet certificates) when set, else the system roots.
func (s *Source) csrFindings(csr *certificatesv1.CertificateSigningRequest) []source.Finding {
	if len(csr.Status.Certificate) == 0 {
		return nil
	}
	labels := s.placeLabels(csr)
	labels[LabelSignerName] = csr.Spec.SignerName
	return s.findingFrom(source.Place{Source: KindCSR, Target: csr.Name, Labels: labels}, csr.Status.Certificate, nil, s.verify)
}
