import { Navigate, Route, Routes, useLocation } from "react-router";
import { Layout } from "@/components/layout";
import { Progress } from "@/components/common";
import { useSession } from "@/lib/session";
import { SignIn } from "@/pages/SignIn";
import { Events } from "@/pages/Events";

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

export function App() {
  return (
    <Routes>
      <Route path="/sign-in" element={<SignIn />} />
      <Route element={<RequireSession />}>
        <Route index element={<Home />} />
        <Route path="*" element={<Home />} />
      </Route>
      <Route element={<RequireSession kind="tenant" />}>
        <Route path="/events" element={<Events />} />
      </Route>
    </Routes>
  );
}
