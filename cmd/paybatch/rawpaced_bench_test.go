package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paybatch/paybatch"
	srsandbox "github.com/paybatch/paybatch/pipeline/sandbox/smartretry"
	"github.com/paybatch/paybatch/pipeline/smartretry"
)

// rawPacedMain is the floor of BenchmarkSubmitCPUAtLimit: what a process
// costs that does nothing but send the same refunds through the same
// SmartRetry client at a fixed pace — no file read, no journal, no pacer
// feedback, no retries — on one P (GOMAXPROCS 1, as paybatch runs while
// paced). It runs as a child (PAYBATCH_TEST_RAWPACED=1) so that its rusage
// is its own. Rows and rate come from PAYBATCH_RAW_ROWS and
// PAYBATCH_RAW_RATE; the rows are refundBatch's.
func rawPacedMain() int {
	n, err := strconv.Atoi(os.Getenv("PAYBATCH_RAW_ROWS"))
	if err != nil || n < 1 {
		fmt.Fprintf(os.Stderr, "PAYBATCH_RAW_ROWS=%q: want a count\n", os.Getenv("PAYBATCH_RAW_ROWS"))
		return 2
	}
	rate, err := strconv.Atoi(os.Getenv("PAYBATCH_RAW_RATE"))
	if err != nil || rate < 1 {
		fmt.Fprintf(os.Stderr, "PAYBATCH_RAW_RATE=%q: want requests per second\n", os.Getenv("PAYBATCH_RAW_RATE"))
		return 2
	}
	runtime.GOMAXPROCS(1)
	c, err := smartretry.NewClient(smartretry.ClientConfig{BaseURL: os.Getenv("SMARTRETRY_BASE_URL"), APIKey: os.Getenv("SMARTRETRY_API_KEY")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	usd := paybatch.MustCurrency("USD")
	ctx := context.Background()
	var wg sync.WaitGroup
	var failed atomic.Int64
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := range n {
		if i > 0 {
			<-tick.C
		}
		req, err := c.Prepare(paybatch.Instruction{Kind: paybatch.KindRefund, Provider: paybatch.SmartRetry,
			MerchantTxID: fmt.Sprintf("RF-%07d", i), Amount: paybatch.Money{Currency: usd, Minor: int64((10+i%40)*100 + (i*10)%50)},
			Terminal: srsandbox.TestTerminal, TransactionRef: fmt.Sprintf("TXB%05d", i), OrderRef: fmt.Sprintf("ORB%05d", i)})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Send(ctx, req, fmt.Sprintf("floor-%07d", i)); err != nil {
				failed.Add(1)
				fmt.Fprintln(os.Stderr, err)
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		return 1
	}
	return 0
}
