// Ends the run with the plain closing line CI reads: "N passed, N failed, N skipped". With
// TEST_TOTALS_FILE set (.ci/run), the counts are also appended there, so that CI can close with
// the totals of all its suites.
const { appendFileSync } = require('node:fs');

class SummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests, numFailedTests, numPendingTests, numTodoTests, numRuntimeErrorTestSuites } = results;
    const failed = numFailedTests + numRuntimeErrorTestSuites;
    const skipped = numPendingTests + numTodoTests;
    process.stdout.write(`\njest: ${numPassedTests} passed, ${failed} failed, ${skipped} skipped\n`);
    if (process.env.TEST_TOTALS_FILE) appendFileSync(process.env.TEST_TOTALS_FILE, `${JSON.stringify({ passed: numPassedTests, failed, skipped })}\n`);
  }
}
module.exports = SummaryReporter;
