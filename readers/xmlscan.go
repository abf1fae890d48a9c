package readers

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// xmlScanner is a minimal, allocation-free pull tokenizer for the parts of
// SpreadsheetML paybatch reads (sheetN.xml, sharedStrings.xml). It knows
// start, end and self-closing tags, attributes, character data with the
// five predefined entities and numeric character references, CDATA,
// comments and processing instructions — which is all OOXML producers
// write. It does not expand DTD entities (none are allowed in OOXML).
// Namespace prefixes are dropped: <x:row> is "row".
//
// Slices it returns point into its buffer and are valid until the next call.
type xmlScanner struct {
	r        io.Reader
	buf      []byte
	pos, end int
	eof      bool
	err      error
	maxTok   int
	segTmp   []byte
	tag      xmlTag // the last tag next returned
}

type xmlTag struct {
	name      []byte // local name
	attrs     []byte // raw attribute text
	end       bool   // </name>
	selfClose bool   // <name/>
}

var errXMLEOF = errors.New("unexpected end of XML")

func newXMLScanner(r io.Reader) *xmlScanner {
	return &xmlScanner{r: r, buf: make([]byte, 256<<10), maxTok: 8 << 20}
}

// more reads more input, keeping unread bytes. It reports whether any new
// byte arrived.
func (s *xmlScanner) more() bool {
	for !s.eof {
		if s.pos > 0 {
			copy(s.buf, s.buf[s.pos:s.end])
			s.end -= s.pos
			s.pos = 0
		}
		if s.end == len(s.buf) {
			if len(s.buf) >= s.maxTok {
				s.err, s.eof = fmt.Errorf("XML token longer than %d bytes", s.maxTok), true
				return false
			}
			nb := make([]byte, 2*len(s.buf))
			copy(nb, s.buf[:s.end])
			s.buf = nb
		}
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if err != nil {
			s.eof = true
			if err != io.EOF {
				s.err = err
			}
		}
		if n > 0 {
			return true
		}
	}
	return false
}

func (s *xmlScanner) fail() error {
	if s.err != nil {
		return s.err
	}
	return errXMLEOF
}

// hasPrefixAt makes sure len(p) bytes are buffered at s.pos+off and compares.
func (s *xmlScanner) hasPrefixAt(off int, p string) bool {
	for s.end-s.pos < off+len(p) {
		if !s.more() {
			return false
		}
	}
	return string(s.buf[s.pos+off:s.pos+off+len(p)]) == p
}

// skipPast advances past the next occurrence of term (from s.pos).
func (s *xmlScanner) skipPast(term string) error {
	for {
		if i := bytes.Index(s.buf[s.pos:s.end], []byte(term)); i >= 0 {
			s.pos += i + len(term)
			return nil
		}
		// keep the last len(term)-1 bytes, they may start the terminator
		if keep := len(term) - 1; s.end-s.pos > keep {
			s.pos = s.end - keep
		}
		if !s.more() {
			return s.fail()
		}
	}
}

// next returns the next tag, skipping character data, comments, PIs,
// CDATA and DOCTYPE. It returns io.EOF at the end of input.
func (s *xmlScanner) next() (*xmlTag, error) {
	for {
		i := bytes.IndexByte(s.buf[s.pos:s.end], '<')
		if i < 0 {
			s.pos = s.end
			if !s.more() {
				if s.err != nil {
					return nil, s.err
				}
				return nil, io.EOF
			}
			continue
		}
		s.pos += i
		for s.end-s.pos < 2 {
			if !s.more() {
				return nil, s.fail()
			}
		}
		if c := s.buf[s.pos+1]; c == '?' || c == '!' {
			switch {
			case s.hasPrefixAt(0, "<?"):
				if err := s.skipPast("?>"); err != nil {
					return nil, err
				}
				continue
			case s.hasPrefixAt(0, "<!--"):
				if err := s.skipPast("-->"); err != nil {
					return nil, err
				}
				continue
			case s.hasPrefixAt(0, "<![CDATA["):
				if err := s.skipPast("]]>"); err != nil {
					return nil, err
				}
				continue
			default:
				return nil, errors.New("DOCTYPE declarations are not allowed in OOXML")
			}
		}
		// find the closing '>' outside quotes: the first '>' after which the
		// quotes seen so far are balanced
		j, from := 0, s.pos+1
		for {
			k := bytes.IndexByte(s.buf[from:s.end], '>')
			if k < 0 {
				off := from - s.pos
				if !s.more() {
					return nil, s.fail()
				}
				from = s.pos + off
				continue
			}
			cand := from + k
			if quotesBalanced(s.buf[s.pos+1 : cand]) {
				j = cand - s.pos
				break
			}
			from = cand + 1
		}
		body := s.buf[s.pos+1 : s.pos+j]
		s.pos += j + 1
		t := &s.tag
		*t = xmlTag{}
		if len(body) > 0 && body[0] == '/' {
			t.end = true
			body = body[1:]
		}
		if len(body) > 0 && body[len(body)-1] == '/' {
			t.selfClose = true
			body = body[:len(body)-1]
		}
		k, colon := 0, -1
		for k < len(body) && !isXMLSpace(body[k]) {
			if body[k] == ':' {
				colon = k
			}
			k++
		}
		t.name, t.attrs = body[colon+1:k], body[k:]
		return t, nil
	}
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// text appends the decoded character data up to the next tag (CDATA
// included verbatim, comments skipped) to dst.
func (s *xmlScanner) text(dst []byte) ([]byte, error) {
	for {
		i := bytes.IndexByte(s.buf[s.pos:s.end], '<')
		if i < 0 {
			s.segTmp = append(s.segTmp, s.buf[s.pos:s.end]...)
			s.pos = s.end
			if !s.more() {
				return dst, s.fail()
			}
			continue
		}
		var err error
		if len(s.segTmp) > 0 {
			s.segTmp = append(s.segTmp, s.buf[s.pos:s.pos+i]...)
			dst, err = appendUnescaped(dst, s.segTmp)
			s.segTmp = s.segTmp[:0]
		} else {
			dst, err = appendUnescaped(dst, s.buf[s.pos:s.pos+i])
		}
		if err != nil {
			return dst, err
		}
		s.pos += i
		switch {
		case s.hasPrefixAt(0, "<![CDATA["):
			s.pos += len("<![CDATA[")
			for {
				if k := bytes.Index(s.buf[s.pos:s.end], []byte("]]>")); k >= 0 {
					dst = append(dst, s.buf[s.pos:s.pos+k]...)
					s.pos += k + 3
					break
				}
				if n := s.end - s.pos - 2; n > 0 {
					dst = append(dst, s.buf[s.pos:s.pos+n]...)
					s.pos += n
				}
				if !s.more() {
					return dst, s.fail()
				}
			}
		case s.hasPrefixAt(0, "<!--"):
			if err := s.skipPast("-->"); err != nil {
				return dst, err
			}
		default:
			return dst, nil
		}
	}
}

// appendUnescaped decodes XML entities in raw.
func appendUnescaped(dst, raw []byte) ([]byte, error) {
	for {
		i := bytes.IndexByte(raw, '&')
		if i < 0 {
			return append(dst, raw...), nil
		}
		dst = append(dst, raw[:i]...)
		raw = raw[i:]
		j := bytes.IndexByte(raw, ';')
		if j < 0 || j > 12 {
			return dst, errors.New("malformed XML entity")
		}
		ent := string(raw[1:j])
		raw = raw[j+1:]
		switch ent {
		case "amp":
			dst = append(dst, '&')
		case "lt":
			dst = append(dst, '<')
		case "gt":
			dst = append(dst, '>')
		case "quot":
			dst = append(dst, '"')
		case "apos":
			dst = append(dst, '\'')
		default:
			if len(ent) < 2 || ent[0] != '#' {
				return dst, fmt.Errorf("unknown XML entity &%s;", ent)
			}
			var n uint64
			var err error
			if ent[1] == 'x' || ent[1] == 'X' {
				n, err = strconv.ParseUint(ent[2:], 16, 32)
			} else {
				n, err = strconv.ParseUint(ent[1:], 10, 32)
			}
			if err != nil || !utf8.ValidRune(rune(n)) {
				return dst, fmt.Errorf("bad character reference &%s;", ent)
			}
			dst = utf8.AppendRune(dst, rune(n))
		}
	}
}

// attr returns the value of the attribute with local name want.
func attr(attrs []byte, want string) ([]byte, bool) {
	var val []byte
	found := false
	eachAttr(attrs, func(name, v []byte) bool {
		if string(name) == want {
			val, found = v, true
			return false
		}
		return true
	})
	return val, found
}

// eachAttr calls fn with each attribute's local name and raw value until fn
// returns false.
func eachAttr(attrs []byte, fn func(name, val []byte) bool) {
	i := 0
	for {
		for i < len(attrs) && isXMLSpace(attrs[i]) {
			i++
		}
		eq := bytes.IndexByte(attrs[i:], '=')
		if eq < 0 {
			return
		}
		name := attrs[i : i+eq]
		for len(name) > 0 && isXMLSpace(name[len(name)-1]) {
			name = name[:len(name)-1]
		}
		if c := bytes.IndexByte(name, ':'); c >= 0 {
			name = name[c+1:]
		}
		i += eq + 1
		for i < len(attrs) && isXMLSpace(attrs[i]) {
			i++
		}
		if i >= len(attrs) || (attrs[i] != '"' && attrs[i] != '\'') {
			return
		}
		end := bytes.IndexByte(attrs[i+1:], attrs[i])
		if end < 0 {
			return
		}
		if !fn(name, attrs[i+1:i+1+end]) {
			return
		}
		i += end + 2
	}
}

// decodeOOXMLEscapes turns the _xHHHH_ escapes Excel writes for control
// characters in strings back into the characters (and _x005F_ into '_').
func decodeOOXMLEscapes(b []byte) []byte {
	if bytes.Index(b, []byte("_x")) < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		if i+7 <= len(b) && b[i] == '_' && b[i+1] == 'x' && b[i+6] == '_' {
			if n, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16); err == nil {
				out = utf8.AppendRune(out, rune(n))
				i += 7
				continue
			}
		}
		out = append(out, b[i])
		i++
	}
	return out
}

// quotesBalanced reports whether b ends outside any quoted attribute value.
func quotesBalanced(b []byte) bool {
	var q byte
	for _, c := range b {
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		}
	}
	return q == 0
}
