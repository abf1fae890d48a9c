package readers

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/paybatch/paybatch"
)

// Sheets lists the worksheets of an XLSX file that a user can see, in
// workbook order (hidden sheets are left out), so a caller can offer a
// choice for Options.Sheet. A CSV file has no sheets: nil, nil. It reads
// only the workbook's small parts, under the same zip limits as OpenReader.
func Sheets(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, paybatch.ErrUnusableFile, err)
	}
	defer f.Close()
	head := make([]byte, 4)
	if n, _ := io.ReadFull(f, head); n < 4 || !bytes.Equal(head, []byte("PK\x03\x04")) {
		return nil, nil
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, paybatch.ErrUnusableFile, err)
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w: this looks like a damaged zip/XLSX file (%v); save the workbook again", path, paybatch.ErrUnusableFile, err)
	}
	files := make(map[string]*zip.File, len(zr.File))
	for _, zf := range zr.File {
		files[strings.TrimPrefix(zf.Name, "/")] = zf
	}
	wbName := "xl/workbook.xml"
	if files["_rels/.rels"] != nil {
		var rootRels struct {
			Rels []relationship `xml:"Relationship"`
		}
		if err := readXMLPart(files, "_rels/.rels", path, &rootRels); err != nil {
			return nil, err
		}
		for _, r := range rootRels.Rels {
			if strings.HasSuffix(r.Type, "/officeDocument") {
				wbName = resolveTarget("", r.Target)
			}
		}
	}
	var wb struct {
		Sheets []struct {
			Name  string `xml:"name,attr"`
			State string `xml:"state,attr"`
		} `xml:"sheets>sheet"`
	}
	if err := readXMLPart(files, wbName, path, &wb); err != nil {
		return nil, err
	}
	var names []string
	for _, s := range wb.Sheets {
		if s.State != "hidden" && s.State != "veryHidden" {
			names = append(names, s.Name)
		}
	}
	return names, nil
}
