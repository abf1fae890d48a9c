package smarterpay

import (
	"errors"
	"fmt"

	api "github.com/paybatch/paybatch/pipeline/smarterpay"
)

// CheckFixtures validates a mandate fixture set (e.g. from a --fixtures
// file) before it is handed to NewSandbox: every mandate needs an id, a
// valid AUDDIS reference, a bank account and a known dd_status; ids and
// AUDDIS references are unique. All problems are reported, each naming the
// fixture's position and id.
func CheckFixtures(ms []MandateFixture) error {
	var errs []error
	ids, refs := map[string]int{}, map[string]int{}
	for i, m := range ms {
		at := fmt.Sprintf("smarterpay mandate %d (%q)", i, m.ID)
		if m.ID == "" {
			errs = append(errs, fmt.Errorf("%s: id is required", at))
		} else if j, dup := ids[m.ID]; dup {
			errs = append(errs, fmt.Errorf("%s: id repeats mandate %d", at, j))
		} else {
			ids[m.ID] = i
		}
		if err := api.CheckAuddis(m.Auddis); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", at, err))
		} else if j, dup := refs[m.Auddis]; dup {
			errs = append(errs, fmt.Errorf("%s: auddis %q repeats mandate %d", at, m.Auddis, j))
		} else {
			refs[m.Auddis] = i
		}
		if m.BankAccount == "" {
			errs = append(errs, fmt.Errorf("%s: bank_account is required", at))
		}
		if mandateState(m.DDStatus) == "inactive" && normStatus(m.DDStatus) != "on_hold" {
			errs = append(errs, fmt.Errorf("%s: dd_status %q is not one of new_instructions, first_collection, ongoing_collection, final_collection, on hold, cancelled, cancelled by payer, cancelled by originator", at, m.DDStatus))
		}
	}
	return errors.Join(errs...)
}
