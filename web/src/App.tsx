import { Navigate, Route, Routes, useLocation } from "react-router";
import { Layout } from "@/components/layout";
import { EmptyState, Progress } from "@/components/common";
import { useSession } from "@/lib/session";
import { SignIn } from "@/pages/SignIn";
import { Events } from "@/pages/Events";
import { EventView } from "@/pages/EventView";
import { SchemaSubject, Schemas } from "@/pages/Schemas";
import { RuleForm, Rules, RuleView } from "@/pages/Rules";
import { DeadLetters, DeadLetterView, operatorScope, tenantScope } from "@/pages/DeadLetters";
import { Audit } from "@/pages/Audit";
import { UsagePage } from "@/pages/Usage";
import { Subscriptions, SubscriptionView } from "@/pages/Subscriptions";
import { FactoryRuns, FactoryRunView } from "@/pages/Factory";
import { FactoryWizard } from "@/pages/FactoryWizard";
import { Apps } from "@/pages/operator/Apps";
import { HealthPage } from "@/pages/operator/Health";
import { Jobs } from "@/pages/operator/Jobs";
import { Sessions } from "@/pages/operator/Sessions";

function RequireSession({ kind }: { kind?: "tenant" | "operator" }) {
  const { session } = useSession();
  const location = useLocation();
  if (session === undefined) return <Progress label="Checking your session…" className="justify-center" />;
  if (session === null) return <Navigate to="/sign-in" replace state={{ from: location.pathname }} />;
  if (kind && session.kind !== kind) return <Navigate to="/" replace />;
  return <Layout />;
}

function Home() {
  const { session } = useSession();
  return <Navigate to={session?.kind === "operator" ? "/operator/apps" : "/events"} replace />;
}

function NotFound() {
  return <EmptyState title="No such page">Use the menu to go where you meant to.</EmptyState>;
}

export function App() {
  return (
    <Routes>
      <Route path="/sign-in" element={<SignIn />} />
      <Route element={<RequireSession />}>
        <Route index element={<Home />} />
        <Route path="*" element={<NotFound />} />
      </Route>
      <Route element={<RequireSession kind="tenant" />}>
        <Route path="/events" element={<Events />} />
        <Route path="/events/view" element={<EventView />} />
        <Route path="/schemas" element={<Schemas />} />
        <Route path="/schemas/:subject" element={<SchemaSubject />} />
        <Route path="/rules" element={<Rules />} />
        <Route path="/rules/new" element={<RuleForm />} />
        <Route path="/rules/:id" element={<RuleView />} />
        <Route path="/rules/:id/edit" element={<RuleForm key="edit" />} />
        <Route path="/dead-letters" element={<DeadLetters scope={tenantScope} />} />
        <Route path="/dead-letters/:id" element={<DeadLetterView scope={tenantScope} />} />
        <Route path="/subscriptions" element={<Subscriptions />} />
        <Route path="/subscriptions/:id" element={<SubscriptionView />} />
        <Route path="/usage" element={<UsagePage />} />
        <Route path="/audit" element={<Audit />} />
        <Route path="/factory" element={<FactoryRuns />} />
        <Route path="/factory/new" element={<FactoryWizard />} />
        <Route path="/factory/runs/:id" element={<FactoryRunView />} />
      </Route>
      <Route element={<RequireSession kind="operator" />}>
        <Route path="/operator/apps" element={<Apps />} />
        <Route path="/operator/health" element={<HealthPage />} />
        <Route path="/operator/jobs" element={<Jobs />} />
        <Route path="/operator/sessions" element={<Sessions />} />
        <Route path="/operator/dead-letters" element={<DeadLetters scope={operatorScope} key="op" />} />
        <Route path="/operator/dead-letters/:id" element={<DeadLetterView scope={operatorScope} key="op-one" />} />
      </Route>
    </Routes>
  );
}
