package web

import (
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/paybatch/paybatch"
)

var funcs = template.FuncMap{
	"money":    formatMinor,
	"amount":   formatMoney,
	"count":    groupInt,
	"count64":  groupInt64,
	"when":     formatTime,
	"date":     formatDate,
	"add":      func(a, b int) int { return a + b },
	"stateTag": func(s State) string { return strings.ReplaceAll(string(s), "_", "-") },
}

func kindOf(s string) paybatch.Kind { return paybatch.Kind(s) }

// formatMinor renders minor units of a currency in its own decimals with
// grouping separators: "1,234.50", "1,000" (JPY), "1.250" (KWD). An unknown
// code is shown as the raw minor units with the code, never guessed.
func formatMinor(code string, minor int64) string {
	cur, err := paybatch.ParseCurrency(code)
	if err != nil {
		return groupInt64(minor) + " (minor units)"
	}
	return formatMoney(paybatch.Money{Currency: cur, Minor: minor})
}

func formatMoney(m paybatch.Money) string {
	s := m.String() // exact, the currency's own decimals
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasFrac := strings.Cut(s, ".")
	out := groupDigits(intPart)
	if hasFrac {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}

func groupInt(n int) string { return groupInt64(int64(n)) }

func groupInt64(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return "-" + groupDigits(s[1:])
	}
	return groupDigits(s)
}

func groupDigits(d string) string {
	if len(d) <= 3 {
		return d
	}
	var b strings.Builder
	pre := len(d) % 3
	if pre > 0 {
		b.WriteString(d[:pre])
	}
	for i := pre; i < len(d); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d[i : i+3])
	}
	return b.String()
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func formatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("2006-01-02")
}
