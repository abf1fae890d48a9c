package readers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/paybatch/paybatch"
)

// FileSHA256 returns the hex SHA-256 of a file's content, the identity
// under which the journal remembers an input. It stops when ctx is
// cancelled; an unreadable file is paybatch.ErrUnusableFile. It is the one
// file hash in paybatch.
func FileSHA256(ctx context.Context, p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("%w: %v", paybatch.ErrUnusableFile, err)
	}
	defer f.Close()
	return readerSHA256(ctx, f)
}

// readerSHA256 is FileSHA256 of what r reads.
func readerSHA256(ctx context.Context, f io.Reader) (string, error) {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("%w: %v", paybatch.ErrUnusableFile, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
