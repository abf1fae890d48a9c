package readers

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/paybatch/paybatch"
)

// The XLSX reader streams the sheet XML straight out of the zip with a
// small hand-written tokenizer (xmlscan.go) instead of excelize's Rows():
// excelize decodes every cell through encoding/xml into structs, which is
// ≈ 20× slower than decompression. The reader takes only what a batch
// needs — workbook.xml (sheet names, date1904), its rels (sheet → part,
// shared strings), sharedStrings.xml and the chosen sheet's sheetData —
// and the tests compare it cell by cell with excelize on every fixture.
//
// Number formats (styles.xml) are deliberately not consulted: the column
// decides what a cell means. A numeric cell in a date column is a date
// serial; in an amount column it is a number; in an id column it is the
// digits it holds. So a date formatted as text or an amount formatted as a
// date is read the same way, and no style lookup can turn money into a date.

// Decompression limits (the zip-bomb guard; excelize's equivalents are
// UnzipSizeLimit / UnzipXMLSizeLimit). A part may inflate to at most
// 100× the file's size (real workbooks compress 5-20×), never less than
// 64 MiB and never more than 4 GiB; shared strings, which are held in
// memory, to at most 512 MiB.
const (
	minPartLimit   = 64 << 20
	maxPartLimit   = 4 << 30
	maxSharedLimit = 512 << 20
	maxMetaLimit   = 16 << 20
)

type xlsxSource struct {
	path      string
	sheetName string
	sheets    []string // every sheet of the workbook, in order
	date1904  bool
	// acceptFormulas: a formula cell is read at its cached value (else the
	// cell is marked and its column's reader refuses it)
	acceptFormulas bool
	merges         []mergeRange // read after the last row (mergeCells follows sheetData)

	rc     io.ReadCloser
	sc     *xmlScanner
	noFast bool // tests: always take readCell's general path
	sst    *sharedStrings
	done   bool

	rowNum int
	cells  []cell
	spans  []cellSpan
	rowBuf []byte
	valBuf []byte
	inlBuf []byte
}

type cellSpan struct {
	start, end int // in rowBuf, or shared string index in start when shared
	shared     bool
	num        bool
	set        bool
	formula    bool // the cell holds a formula; start/end is its cached value
}

// mergeRange is one merged area of a sheet, 0-based columns, 1-based rows.
type mergeRange struct{ c0, r0, c1, r1 int }

func partLimit(fileSize int64, max int64) int64 {
	l := fileSize * 100
	if l < minPartLimit {
		l = minPartLimit
	}
	if l > max {
		l = max
	}
	return l
}

// limitedPart opens a zip entry and fails once it inflates beyond limit.
func limitedPart(zf *zip.File, limit int64, where string) (io.ReadCloser, error) {
	if zf.UncompressedSize64 > uint64(limit) {
		return nil, zipBomb(where, zf.Name, limit)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: part %s cannot be read (%v); save the workbook again", where, paybatch.ErrUnusableFile, zf.Name, err)
	}
	return &limitReader{rc: rc, left: limit, name: zf.Name, where: where, limit: limit}, nil
}

func zipBomb(where, name string, limit int64) error {
	return fmt.Errorf("%s: %w: part %s inflates beyond %d bytes (a zip bomb or a corrupt file); re-export the batch", where, paybatch.ErrUnusableFile, name, limit)
}

type limitReader struct {
	rc          io.ReadCloser
	left, limit int64
	name, where string
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, zipBomb(l.where, l.name, l.limit)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left+1]
	}
	n, err := l.rc.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, zipBomb(l.where, l.name, l.limit)
	}
	return n, err
}

func (l *limitReader) Close() error { return l.rc.Close() }

type relationship struct {
	ID     string `xml:"Id,attr"`
	Type   string `xml:"Type,attr"`
	Target string `xml:"Target,attr"`
}

func readXMLPart(files map[string]*zip.File, name, where string, v any) error {
	zf := files[name]
	if zf == nil {
		return fmt.Errorf("%s: %w: not a workbook (no %s inside the zip); save it from the spreadsheet as .xlsx", where, paybatch.ErrUnusableFile, name)
	}
	rc, err := limitedPart(zf, maxMetaLimit, where)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := xml.NewDecoder(rc).Decode(v); err != nil {
		return fmt.Errorf("%s: %w: %s is damaged (%v); save the workbook again", where, paybatch.ErrUnusableFile, name, err)
	}
	return nil
}

// resolveTarget resolves a relationship target relative to the part that
// owns the rels (dir), or from the package root when it starts with '/'.
func resolveTarget(dir, target string) string {
	if strings.HasPrefix(target, "/") {
		return strings.TrimPrefix(path.Clean(target), "/")
	}
	return path.Clean(path.Join(dir, target))
}

func openXLSX(f io.ReaderAt, size int64, where, wantSheet string) (*xlsxSource, error) {
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: this looks like a damaged zip/XLSX file (%v); save the workbook again", where, paybatch.ErrUnusableFile, err)
	}
	files := make(map[string]*zip.File, len(zr.File))
	for _, zf := range zr.File {
		files[strings.TrimPrefix(zf.Name, "/")] = zf
	}
	if files["EncryptedPackage"] != nil || files["EncryptionInfo"] != nil {
		return nil, fmt.Errorf("%s: %w: the workbook is password-protected; remove the password and save it again", where, paybatch.ErrUnusableFile)
	}
	// Root rels → main workbook part.
	wbName := "xl/workbook.xml"
	var rootRels struct {
		Rels []relationship `xml:"Relationship"`
	}
	if files["_rels/.rels"] != nil {
		if err := readXMLPart(files, "_rels/.rels", where, &rootRels); err != nil {
			return nil, err
		}
		for _, r := range rootRels.Rels {
			if strings.HasSuffix(r.Type, "/officeDocument") {
				wbName = resolveTarget("", r.Target)
			}
		}
	}
	if files[wbName] == nil {
		if files["word/document.xml"] != nil || files["ppt/presentation.xml"] != nil {
			return nil, fmt.Errorf("%s: %w: this is a Word or PowerPoint file, not a workbook; export the batch as .xlsx or .csv", where, paybatch.ErrUnusableFile)
		}
		return nil, fmt.Errorf("%s: %w: a zip file but not an XLSX workbook; export the batch as .xlsx or .csv", where, paybatch.ErrUnusableFile)
	}
	var wb struct {
		Pr struct {
			Date1904 string `xml:"date1904,attr"`
		} `xml:"workbookPr"`
		Sheets []struct {
			Name  string `xml:"name,attr"`
			State string `xml:"state,attr"` // "hidden", "veryHidden" or visible
			RID   string `xml:"http://schemas.openxmlformats.org/officeDocument/2006/relationships id,attr"`
			// Strict OOXML uses another namespace for r:id.
			RIDStrict string `xml:"http://purl.oclc.org/ooxml/officeDocument/relationships id,attr"`
		} `xml:"sheets>sheet"`
	}
	if err := readXMLPart(files, wbName, where, &wb); err != nil {
		return nil, err
	}
	wbDir := path.Dir(wbName)
	relsName := path.Join(wbDir, "_rels", path.Base(wbName)+".rels")
	var rels struct {
		Rels []relationship `xml:"Relationship"`
	}
	if err := readXMLPart(files, relsName, where, &rels); err != nil {
		return nil, err
	}
	if len(wb.Sheets) == 0 {
		return nil, fmt.Errorf("%s: %w: the workbook has no sheets", where, paybatch.ErrUnusableFile)
	}
	// The default is the first sheet the user can see (a hidden first
	// sheet is not what they mean by "the first sheet"); a workbook whose
	// every sheet is hidden is refused rather than read from a sheet the
	// user cannot see.
	var names, sheetNames []string
	for _, s := range wb.Sheets {
		names = append(names, strconv.Quote(s.Name))
		sheetNames = append(sheetNames, s.Name)
	}
	idx := -1
	for i, sh := range wb.Sheets {
		if sh.State != "hidden" && sh.State != "veryHidden" {
			idx = i
			break
		}
	}
	if idx < 0 && wantSheet == "" {
		return nil, fmt.Errorf("%s: %w: every sheet of the workbook is hidden (%s); unhide the sheet that holds the data, or name it with --sheet", where, paybatch.ErrUnusableFile, strings.Join(names, ", "))
	}
	if wantSheet != "" {
		idx = -1
		for i, s := range wb.Sheets {
			if s.Name == wantSheet {
				idx = i
			}
		}
		if idx < 0 {
			for i, s := range wb.Sheets {
				if strings.EqualFold(strings.TrimSpace(s.Name), strings.TrimSpace(wantSheet)) {
					idx = i
				}
			}
		}
		if idx < 0 {
			return nil, fmt.Errorf("%s: %w: no sheet named %q; the sheets are %s — pass one of them with --sheet", where, paybatch.ErrUnusableFile, wantSheet, strings.Join(names, ", "))
		}
	}
	sh := wb.Sheets[idx]
	rid := sh.RID
	if rid == "" {
		rid = sh.RIDStrict
	}
	sheetWhere := fmt.Sprintf("%s sheet %q", where, sh.Name)
	var sheetPart, sstPart string
	for _, r := range rels.Rels {
		if r.ID == rid {
			if !strings.HasSuffix(r.Type, "/worksheet") {
				return nil, fmt.Errorf("%s: %w: this sheet is a chart or dialog sheet, not a worksheet; choose another with --sheet", sheetWhere, paybatch.ErrUnusableFile)
			}
			sheetPart = resolveTarget(wbDir, r.Target)
		}
		if strings.HasSuffix(r.Type, "/sharedStrings") {
			sstPart = resolveTarget(wbDir, r.Target)
		}
	}
	if sheetPart == "" || files[sheetPart] == nil {
		return nil, fmt.Errorf("%s: %w: the workbook does not contain this sheet's data; save the workbook again", sheetWhere, paybatch.ErrUnusableFile)
	}
	x := &xlsxSource{path: where, sheetName: sh.Name, sheets: sheetNames, date1904: wb.Pr.Date1904 == "1" || wb.Pr.Date1904 == "true"}
	if sstPart != "" && files[sstPart] != nil {
		sst, err := loadSharedStrings(files[sstPart], partLimit(size, maxSharedLimit), sheetWhere)
		if err != nil {
			return nil, err
		}
		x.sst = sst
	}
	rc, err := limitedPart(files[sheetPart], partLimit(size, maxPartLimit), sheetWhere)
	if err != nil {
		return nil, err
	}
	x.rc = rc
	x.sc = newXMLScanner(rc)
	x.path = where
	if err := x.seekSheetData(); err != nil {
		rc.Close()
		return nil, x.wrap(err)
	}
	return x, nil
}

func (x *xlsxSource) where() string { return fmt.Sprintf("%s sheet %q", x.path, x.sheetName) }

func (x *xlsxSource) wrap(err error) error {
	if errors.Is(err, paybatch.ErrUnusableFile) {
		return err
	}
	at := ""
	if x.rowNum > 0 {
		at = fmt.Sprintf(" row %d", x.rowNum)
	}
	return fmt.Errorf("%s%s: %w: the sheet XML is damaged (%v); save the workbook again", x.where(), at, paybatch.ErrUnusableFile, err)
}

// sharedStrings holds every shared string in one string; offsets index it.
type sharedStrings struct {
	blob string
	off  []uint32 // len = n+1
}

func (s *sharedStrings) get(i int) (string, bool) {
	if i < 0 || i+1 >= len(s.off) {
		return "", false
	}
	return s.blob[s.off[i]:s.off[i+1]], true
}

func loadSharedStrings(zf *zip.File, limit int64, where string) (*sharedStrings, error) {
	rc, err := limitedPart(zf, limit, where)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	sc := newXMLScanner(rc)
	var blob []byte
	off := []uint32{0}
	var cur []byte
	inSI, rph := false, 0
	bad := func(err error) error {
		if errors.Is(err, paybatch.ErrUnusableFile) {
			return err
		}
		return fmt.Errorf("%s: %w: the shared strings are damaged (%v); save the workbook again", where, paybatch.ErrUnusableFile, err)
	}
	for {
		t, err := sc.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, bad(err)
		}
		switch string(t.name) {
		case "si":
			switch {
			case t.selfClose:
				off = append(off, uint32(len(blob)))
			case t.end:
				blob = append(blob, decodeOOXMLEscapes(cur)...)
				off = append(off, uint32(len(blob)))
				inSI = false
			default:
				inSI, cur = true, cur[:0]
			}
		case "rPh":
			if !t.selfClose {
				if t.end {
					rph--
				} else {
					rph++
				}
			}
		case "t":
			if inSI && rph == 0 && !t.end && !t.selfClose {
				if cur, err = sc.text(cur); err != nil {
					return nil, bad(err)
				}
			}
		}
	}
	return &sharedStrings{blob: string(blob), off: off}, nil
}

func (x *xlsxSource) seekSheetData() error {
	for {
		t, err := x.sc.next()
		if err == io.EOF {
			x.done = true
			return nil
		}
		if err != nil {
			return err
		}
		if string(t.name) == "sheetData" && !t.end {
			x.done = t.selfClose
			return nil
		}
	}
}

// colIndex parses the column letters of a cell reference like "AB12" (0-based).
func colIndex(ref []byte) (int, bool) {
	n, i := 0, 0
	for ; i < len(ref) && ref[i] >= 'A' && ref[i] <= 'Z'; i++ {
		n = n*26 + int(ref[i]-'A'+1)
		if n > 16384 {
			return 0, false
		}
	}
	if i == 0 {
		return 0, false
	}
	return n - 1, true
}

func colName(i int) string {
	s := ""
	for i++; i > 0; i = (i - 1) / 26 {
		s = string(rune('A'+(i-1)%26)) + s
	}
	return s
}

func (x *xlsxSource) next() (int, []cell, error) {
	for !x.done {
		t, err := x.sc.next()
		if err == io.EOF {
			return 0, nil, x.wrap(errors.New("the sheet ends inside its data"))
		}
		if err != nil {
			return 0, nil, x.wrap(err)
		}
		switch string(t.name) {
		case "sheetData":
			if t.end {
				x.done = true
			}
		case "row":
			if t.end {
				continue
			}
			if r, ok := attr(t.attrs, "r"); ok {
				n, err := strconv.Atoi(string(r))
				if err != nil || n < 1 || n > 1<<20 {
					return 0, nil, x.wrap(fmt.Errorf("bad row number %q", r))
				}
				x.rowNum = n
			} else {
				x.rowNum++
			}
			if t.selfClose {
				continue
			}
			blank, err := x.readRow()
			if err != nil {
				return 0, nil, err
			}
			if !blank {
				return x.rowNum, x.cells, nil
			}
		}
	}
	if x.sc != nil {
		// after the rows: the merged ranges (mergeCells follows sheetData)
		err := x.readMerges()
		x.sc = nil
		if err != nil {
			return 0, nil, err
		}
	}
	return 0, nil, io.EOF
}

// readRow reads the cells of one <row> up to </row>; it reports whether
// every cell is blank.
func (x *xlsxSource) readRow() (bool, error) {
	x.spans = x.spans[:0]
	x.rowBuf = x.rowBuf[:0]
	col, tooWide := -1, 0
	for {
		t, err := x.sc.next()
		if err != nil {
			if err == io.EOF {
				err = errors.New("the sheet ends inside a row")
			}
			return false, x.wrap(err)
		}
		name := string(t.name)
		if name == "row" && t.end {
			break
		}
		if name != "c" || t.end {
			continue
		}
		var ref, typ []byte
		haveRef := false
		eachAttr(t.attrs, func(name, val []byte) bool {
			switch string(name) {
			case "r":
				ref, haveRef = val, true
			case "t":
				typ = val
			}
			return true
		})
		if haveRef {
			c, ok := colIndex(ref)
			if !ok {
				return false, x.wrap(fmt.Errorf("bad cell reference %q", ref))
			}
			col = c
		} else {
			col++
		}
		ctype := cellType(typ)
		if t.selfClose {
			continue
		}
		sp, err := x.readCell(ctype)
		if err != nil {
			return false, err
		}
		if !sp.set {
			continue
		}
		if col >= maxColumns {
			tooWide = max(tooWide, col+1)
			continue
		}
		for len(x.spans) <= col {
			x.spans = append(x.spans, cellSpan{})
		}
		x.spans[col] = sp
	}
	if tooWide > 0 {
		return false, fmt.Errorf("%s row %d: %w: the sheet has values out to column %s (%d columns, more than %d); a batch needs a dozen — delete the unused columns",
			x.where(), x.rowNum, paybatch.ErrUnusableFile, colName(tooWide-1), tooWide, maxColumns)
	}
	rowStr := string(x.rowBuf)
	x.cells = x.cells[:0]
	blank := true
	for _, sp := range x.spans {
		var c cell
		switch {
		case !sp.set:
		case sp.shared:
			s, ok := x.sst.get(sp.start)
			if !ok {
				return false, x.wrap(fmt.Errorf("shared string %d does not exist", sp.start))
			}
			c.s = s
		default:
			c.s, c.num = rowStr[sp.start:sp.end], sp.num
		}
		c.formula = sp.formula
		if blank && (strings.TrimSpace(c.s) != "" || c.formula) {
			blank = false
		}
		x.cells = append(x.cells, c)
	}
	return blank, nil
}

// fastCell reads the two shapes nearly every writer uses for a cell's
// content — <v>text</v></c> and <is><t>text</t></is></c> with no entities —
// straight from the buffer. Anything else (formulas, rich text, entities,
// whitespace, a value split across reads) reports false without consuming
// input, and readCell's general loop takes over.
func (x *xlsxSource) fastCell(ctype string) (cellSpan, bool) {
	sc := x.sc
	var open, close string
	switch {
	case sc.hasPrefixAt(0, "<v>"):
		open, close = "<v>", "</v></c>"
	case sc.hasPrefixAt(0, "<is><t>"):
		open, close = "<is><t>", "</t></is></c>"
	default:
		return cellSpan{}, false
	}
	if ctype == "inlineStr" != (open == "<is><t>") {
		return cellSpan{}, false
	}
	start := sc.pos + len(open)
	lt := bytes.IndexByte(sc.buf[start:sc.end], '<')
	if lt < 0 {
		return cellSpan{}, false
	}
	text := sc.buf[start : start+lt]
	if bytes.IndexByte(text, '&') >= 0 || !sc.hasPrefixAt(len(open)+lt, close) {
		return cellSpan{}, false
	}
	text = sc.buf[sc.pos+len(open) : sc.pos+len(open)+lt] // hasPrefixAt may have moved the buffer
	var sp cellSpan
	var err error
	if open == "<v>" {
		x.valBuf = append(x.valBuf[:0], text...)
		sp, err = x.finishCell(ctype, true, false)
	} else {
		x.inlBuf = append(x.inlBuf[:0], text...)
		sp, err = x.finishCell(ctype, false, true)
	}
	if err != nil {
		return cellSpan{}, false
	}
	sc.pos += len(open) + lt + len(close)
	return sp, true
}

// readCell reads the children of a <c> up to </c>.
func (x *xlsxSource) readCell(ctype string) (cellSpan, error) {
	if !x.noFast {
		if sp, ok := x.fastCell(ctype); ok {
			return sp, nil
		}
	}
	var sp cellSpan
	var haveV, haveIS, haveF bool
	x.valBuf, x.inlBuf = x.valBuf[:0], x.inlBuf[:0]
	inIS, rph := false, 0
	for {
		t, err := x.sc.next()
		if err != nil {
			if err == io.EOF {
				err = errors.New("the sheet ends inside a cell")
			}
			return sp, x.wrap(err)
		}
		switch string(t.name) {
		case "c":
			if t.end {
				goto done
			}
			return sp, x.wrap(errors.New("a cell inside a cell"))
		case "f":
			if !t.end {
				haveF = true
			}
		case "v":
			if !t.end && !t.selfClose {
				if x.valBuf, err = x.sc.text(x.valBuf[:0]); err != nil {
					return sp, x.wrap(err)
				}
				haveV = true
			}
		case "is":
			if !t.selfClose {
				inIS = !t.end
				haveIS = true
			}
		case "rPh":
			if !t.selfClose {
				if t.end {
					rph--
				} else {
					rph++
				}
			}
		case "t":
			if inIS && rph == 0 && !t.end && !t.selfClose {
				if x.inlBuf, err = x.sc.text(x.inlBuf); err != nil {
					return sp, x.wrap(err)
				}
			}
		}
	}
done:
	sp, err := x.finishCell(ctype, haveV, haveIS)
	if err != nil || !haveF || x.acceptFormulas && sp.set {
		return sp, err
	}
	// a formula: its cached value (or none) is marked, and the column that
	// reads it decides (rowCtx.cellOf refuses it)
	if !sp.set {
		sp = x.span(nil, false)
	}
	sp.formula = true
	return sp, nil
}

// finishCell turns the collected <v> or inline text into a span.
func (x *xlsxSource) finishCell(ctype string, haveV, haveIS bool) (cellSpan, error) {
	var sp cellSpan
	switch ctype {
	case "s":
		if !haveV {
			return sp, nil
		}
		i, err := strconv.Atoi(string(bytes.TrimSpace(x.valBuf)))
		if err != nil || x.sst == nil {
			return sp, x.wrap(fmt.Errorf("bad shared string reference %q", x.valBuf))
		}
		return cellSpan{start: i, shared: true, set: true}, nil
	case "inlineStr":
		if !haveIS {
			return sp, nil
		}
		return x.span(decodeOOXMLEscapes(x.inlBuf), false), nil
	case "str":
		if !haveV {
			return sp, nil
		}
		return x.span(decodeOOXMLEscapes(x.valBuf), false), nil
	case "b":
		if !haveV {
			return sp, nil
		}
		v := "FALSE"
		if string(bytes.TrimSpace(x.valBuf)) == "1" {
			v = "TRUE"
		}
		return x.span([]byte(v), false), nil
	case "e", "d":
		if !haveV {
			return sp, nil
		}
		return x.span(x.valBuf, false), nil
	default: // "n" or absent: a number
		if !haveV || len(bytes.TrimSpace(x.valBuf)) == 0 {
			return sp, nil
		}
		return x.span(x.valBuf, true), nil
	}
}

func (x *xlsxSource) span(v []byte, num bool) cellSpan {
	start := len(x.rowBuf)
	x.rowBuf = append(x.rowBuf, v...)
	return cellSpan{start: start, end: len(x.rowBuf), num: num, set: true}
}

func (x *xlsxSource) close() error {
	if x.rc == nil {
		return nil
	}
	err := x.rc.Close()
	x.rc = nil
	return err
}

// readMerges reads the <mergeCell ref="A2:A5"/> elements that follow the
// sheet's data.
func (x *xlsxSource) readMerges() error {
	for {
		t, err := x.sc.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return x.wrap(err)
		}
		if string(t.name) != "mergeCell" || t.end {
			continue
		}
		ref, ok := attr(t.attrs, "ref")
		if !ok {
			continue
		}
		a, b, ok := strings.Cut(string(ref), ":")
		if !ok {
			continue
		}
		c0, r0, ok0 := cellRef(a)
		c1, r1, ok1 := cellRef(b)
		if ok0 && ok1 && len(x.merges) < 1<<16 {
			x.merges = append(x.merges, mergeRange{c0, r0, c1, r1})
		}
	}
}

// cellRef splits "AB12" into column 27 (0-based) and row 12.
func cellRef(s string) (col, row int, ok bool) {
	i := strings.IndexFunc(s, func(r rune) bool { return r >= '0' && r <= '9' })
	if i <= 0 {
		return 0, 0, false
	}
	col, ok = colIndex([]byte(strings.ToUpper(s[:i])))
	row, err := strconv.Atoi(s[i:])
	return col, row, ok && err == nil
}

// mergedAt returns the merged range that covers the cell (col, row) other
// than as its first cell.
func mergedAt(merges []mergeRange, col, row int) (mergeRange, bool) {
	for _, m := range merges {
		if col >= m.c0 && col <= m.c1 && row >= m.r0 && row <= m.r1 && (col != m.c0 || row != m.r0) {
			return m, true
		}
	}
	return mergeRange{}, false
}

func (m mergeRange) String() string {
	return fmt.Sprintf("%s%d:%s%d", colName(m.c0), m.r0, colName(m.c1), m.r1)
}

// cellType interns the few values of a cell's t attribute.
func cellType(t []byte) string {
	switch string(t) {
	case "", "n":
		return "n"
	case "s":
		return "s"
	case "str":
		return "str"
	case "inlineStr":
		return "inlineStr"
	case "b":
		return "b"
	case "e":
		return "e"
	case "d":
		return "d"
	}
	return string(t)
}
