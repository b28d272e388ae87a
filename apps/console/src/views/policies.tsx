export function PoliciesView() {
  return (
    <section>
      <h1>Policies</h1>
      <p>This view is left out. Policies (Cedar) are loaded by the guards and gateways in front of each service, from their own folders; the issuer does not hold them, so the console cannot say what a guard would decide without being given that guard's policy folder.</p>
      <p>To check a decision, run <code>agentid policy test</code> against the guard's folder on the machine that runs it (see <code>packages/policy/README.md</code>).</p>
    </section>
  )
}
