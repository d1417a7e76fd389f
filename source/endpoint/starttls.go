package endpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Limits that keep a hostile or confused server from making us buffer
// without end before TLS starts.
const (
	maxLineLength   = 4096
	maxReplyLines   = 128
	maxPacketLength = 1 << 16
)

// errStartTLSRefused marks a server that answered but would not start TLS.
var errStartTLSRefused = errors.New("server refused STARTTLS")

// startTLS runs the protocol's plain-text exchange up to the point where the
// next bytes on conn are the TLS handshake.
func startTLS(conn net.Conn, protocol, serverName string) error {
	// No read-ahead: after the exchange the connection belongs to TLS, and
	// servers wait for our ClientHello, so a reader that only ever holds what
	// the server sent before is safe.
	r := bufio.NewReaderSize(conn, maxLineLength)
	switch protocol {
	case "smtp":
		return startSMTP(conn, r)
	case "imap":
		return startIMAP(conn, r)
	case "pop3":
		return startPOP3(conn, r)
	case "ftp":
		return startFTP(conn, r)
	case "ldap":
		return startLDAP(conn, r)
	case "postgres":
		return startPostgres(conn, r)
	case "mysql":
		return startMySQL(conn, r)
	}
	return fmt.Errorf("unknown STARTTLS protocol %q", protocol)
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("line longer than %d bytes", maxLineLength)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("connection closed by server: %w", err)
		}
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// readReply reads a three-digit reply (SMTP, FTP). A multi-line reply starts
// with "123-" and ends with a line starting "123 "; lines between may be free
// text (RFC 959 section 4.2), which SMTP servers never send but FTP servers do.
func readReply(r *bufio.Reader) (code string, lines []string, err error) {
	for range maxReplyLines {
		line, err := readLine(r)
		if err != nil {
			return "", lines, err
		}
		lines = append(lines, line)
		if code == "" { // the first line
			if len(line) < 3 || !isDigits(line[:3]) || (len(line) > 3 && line[3] != ' ' && line[3] != '-') {
				return "", lines, fmt.Errorf("malformed reply %q", truncate(line))
			}
			if len(line) == 3 || line[3] == ' ' {
				return line[:3], lines, nil
			}
			code = line[:3]
			continue
		}
		if line == code || strings.HasPrefix(line, code+" ") {
			return code, lines, nil
		}
	}
	return "", lines, fmt.Errorf("reply longer than %d lines", maxReplyLines)
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func startSMTP(w io.Writer, r *bufio.Reader) error {
	code, lines, err := readReply(r)
	if err != nil {
		return fmt.Errorf("reading greeting: %w", err)
	}
	if code != "220" {
		return fmt.Errorf("%w: greeting %q", errStartTLSRefused, truncate(strings.Join(lines, " ")))
	}
	if _, err := io.WriteString(w, "EHLO certwatch\r\n"); err != nil {
		return err
	}
	code, lines, err = readReply(r)
	if err != nil {
		return fmt.Errorf("reading EHLO reply: %w", err)
	}
	if code != "250" {
		return fmt.Errorf("%w: EHLO answered %q", errStartTLSRefused, truncate(strings.Join(lines, " ")))
	}
	offered := false
	for _, l := range lines {
		if len(l) > 4 && strings.EqualFold(strings.Fields(l[4:] + " x")[0], "STARTTLS") {
			offered = true
		}
	}
	if !offered {
		return fmt.Errorf("%w: STARTTLS not among the EHLO extensions", errStartTLSRefused)
	}
	if _, err := io.WriteString(w, "STARTTLS\r\n"); err != nil {
		return err
	}
	code, lines, err = readReply(r)
	if err != nil {
		return fmt.Errorf("reading STARTTLS reply: %w", err)
	}
	if code != "220" {
		return fmt.Errorf("%w: %q", errStartTLSRefused, truncate(strings.Join(lines, " ")))
	}
	return nil
}

func startIMAP(w io.Writer, r *bufio.Reader) error {
	greeting, err := readLine(r)
	if err != nil {
		return fmt.Errorf("reading greeting: %w", err)
	}
	if !strings.HasPrefix(greeting, "* OK") {
		return fmt.Errorf("%w: greeting %q", errStartTLSRefused, truncate(greeting))
	}
	if _, err := io.WriteString(w, "a1 STARTTLS\r\n"); err != nil {
		return err
	}
	for range maxReplyLines {
		line, err := readLine(r)
		if err != nil {
			return fmt.Errorf("reading STARTTLS reply: %w", err)
		}
		if strings.HasPrefix(line, "* ") { // untagged data, e.g. CAPABILITY
			continue
		}
		if strings.HasPrefix(line, "a1 OK") {
			return nil
		}
		return fmt.Errorf("%w: %q", errStartTLSRefused, truncate(line))
	}
	return fmt.Errorf("reply longer than %d lines", maxReplyLines)
}

func startPOP3(w io.Writer, r *bufio.Reader) error {
	greeting, err := readLine(r)
	if err != nil {
		return fmt.Errorf("reading greeting: %w", err)
	}
	if !strings.HasPrefix(greeting, "+OK") {
		return fmt.Errorf("%w: greeting %q", errStartTLSRefused, truncate(greeting))
	}
	if _, err := io.WriteString(w, "STLS\r\n"); err != nil {
		return err
	}
	line, err := readLine(r)
	if err != nil {
		return fmt.Errorf("reading STLS reply: %w", err)
	}
	if !strings.HasPrefix(line, "+OK") {
		return fmt.Errorf("%w: %q", errStartTLSRefused, truncate(line))
	}
	return nil
}

func startFTP(w io.Writer, r *bufio.Reader) error {
	code, lines, err := readReply(r)
	if err != nil {
		return fmt.Errorf("reading greeting: %w", err)
	}
	if code != "220" {
		return fmt.Errorf("%w: greeting %q", errStartTLSRefused, truncate(strings.Join(lines, " ")))
	}
	if _, err := io.WriteString(w, "AUTH TLS\r\n"); err != nil {
		return err
	}
	code, lines, err = readReply(r)
	if err != nil {
		return fmt.Errorf("reading AUTH TLS reply: %w", err)
	}
	if code != "234" {
		return fmt.Errorf("%w: %q", errStartTLSRefused, truncate(strings.Join(lines, " ")))
	}
	return nil
}

// ldapStartTLSRequest is an LDAPv3 ExtendedRequest (message ID 1) for the
// StartTLS OID 1.3.6.1.4.1.1466.20037 (RFC 4511 section 4.14).
var ldapStartTLSRequest = func() []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(msg *cryptobyte.Builder) {
		msg.AddASN1Int64(1)
		msg.AddASN1(cbasn1.Tag(0x40|23).Constructed(), func(req *cryptobyte.Builder) {
			req.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(oid *cryptobyte.Builder) {
				oid.AddBytes([]byte("1.3.6.1.4.1.1466.20037"))
			})
		})
	})
	return b.BytesOrPanic()
}()

func startLDAP(w io.Writer, r *bufio.Reader) error {
	if _, err := w.Write(ldapStartTLSRequest); err != nil {
		return err
	}
	msg, err := readBERMessage(r)
	if err != nil {
		return fmt.Errorf("reading ExtendedResponse: %w", err)
	}
	// LDAPMessage ::= SEQUENCE { messageID INTEGER, ExtendedResponse [APPLICATION 24] { resultCode ENUMERATED, ... } }
	s := cryptobyte.String(msg)
	var seq, resp cryptobyte.String
	var id int64
	var code int
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1Integer(&id) ||
		!seq.ReadASN1(&resp, cbasn1.Tag(0x40|24).Constructed()) || !resp.ReadASN1Enum(&code) {
		return fmt.Errorf("%w: not an LDAP ExtendedResponse", errStartTLSRefused)
	}
	if code != 0 {
		return fmt.Errorf("%w: LDAP result code %d", errStartTLSRefused, code)
	}
	return nil
}

// readBERMessage reads one definite-length BER element.
func readBERMessage(r *bufio.Reader) ([]byte, error) {
	head := make([]byte, 2)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	length := int(head[1])
	var lenBytes []byte
	if head[1]&0x80 != 0 {
		n := int(head[1] & 0x7f)
		if n == 0 || n > 3 {
			return nil, fmt.Errorf("unsupported BER length form")
		}
		lenBytes = make([]byte, n)
		if _, err := io.ReadFull(r, lenBytes); err != nil {
			return nil, err
		}
		length = 0
		for _, b := range lenBytes {
			length = length<<8 | int(b)
		}
	}
	if length > maxPacketLength {
		return nil, fmt.Errorf("response of %d bytes is too long", length)
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(append(head, lenBytes...), body...), nil
}

// postgresSSLRequest is the SSLRequest message: length 8, code 80877103.
var postgresSSLRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

func startPostgres(w io.Writer, r *bufio.Reader) error {
	if _, err := w.Write(postgresSSLRequest); err != nil {
		return err
	}
	answer, err := r.ReadByte()
	if err != nil {
		return fmt.Errorf("reading SSLRequest answer: %w", err)
	}
	if answer != 'S' {
		return fmt.Errorf("%w: PostgreSQL answered %q to SSLRequest", errStartTLSRefused, answer)
	}
	return nil
}

// MySQL capability flags (https://dev.mysql.com/doc/dev/mysql-server/latest/group__group__cs__capabilities__flags.html).
const (
	mysqlClientLongPassword   = 0x00000001
	mysqlClientProtocol41     = 0x00000200
	mysqlClientSSL            = 0x00000800
	mysqlClientSecureConn     = 0x00008000
	mysqlClientPluginAuth     = 0x00080000
	mysqlHandshakeV10         = 10
	mysqlErrPacket            = 0xff
	mysqlDefaultCharsetUTF8MB = 45
)

func startMySQL(w io.Writer, r *bufio.Reader) error {
	head := make([]byte, 4)
	if _, err := io.ReadFull(r, head); err != nil {
		return fmt.Errorf("reading server greeting: %w", err)
	}
	length := int(head[0]) | int(head[1])<<8 | int(head[2])<<16
	if length > maxPacketLength || length < 1 {
		return fmt.Errorf("greeting packet of %d bytes", length)
	}
	payload := make([]byte, length)
	if _, err := io.ReadFull(r, payload); err != nil {
		return fmt.Errorf("reading server greeting: %w", err)
	}
	if payload[0] == mysqlErrPacket {
		return fmt.Errorf("%w: server sent an error packet", errStartTLSRefused)
	}
	if payload[0] != mysqlHandshakeV10 {
		return fmt.Errorf("%w: unknown handshake protocol %d", errStartTLSRefused, payload[0])
	}
	// protocol(1) version(NUL-terminated) thread id(4) auth data(8) filler(1) capability flags lower(2)
	rest := payload[1:]
	nul := bytes.IndexByte(rest, 0)
	if nul < 0 || len(rest) < nul+1+4+8+1+2 {
		return fmt.Errorf("truncated server greeting")
	}
	capsOff := nul + 1 + 4 + 8 + 1
	caps := uint32(binary.LittleEndian.Uint16(rest[capsOff:]))
	if caps&mysqlClientSSL == 0 {
		return fmt.Errorf("%w: the server does not offer SSL", errStartTLSRefused)
	}
	// SSLRequest: capability flags(4) max packet size(4) charset(1) filler(23), sequence id 1.
	req := make([]byte, 4+32)
	req[0], req[3] = 32, 1
	binary.LittleEndian.PutUint32(req[4:], mysqlClientLongPassword|mysqlClientProtocol41|mysqlClientSSL|mysqlClientSecureConn|mysqlClientPluginAuth)
	binary.LittleEndian.PutUint32(req[8:], 1<<24)
	req[12] = mysqlDefaultCharsetUTF8MB
	_, err := w.Write(req)
	return err
}

func truncate(s string) string {
	const max = 120
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
