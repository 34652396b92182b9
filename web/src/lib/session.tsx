import * as React from "react";
import { api, ApiError, onSessionEnded, setCsrfToken } from "./api";

export interface SessionInfo {
  session_id: string;
  kind: "tenant" | "operator";
  app_id?: string;
  name: string;
  csrf_token: string;
  expires_at: string;
  idle_timeout_seconds: number;
}

interface SessionState {
  /** undefined while loading; null when signed out. */
  session: SessionInfo | null | undefined;
  /** why the last session ended, shown on the sign-in page. */
  endedReason: string;
  signIn(body: Record<string, string>): Promise<SessionInfo>;
  signOut(): Promise<void>;
}

const Ctx = React.createContext<SessionState | null>(null);

export function SessionProvider({ children }: { children: React.ReactNode }) {
  const [session, setSession] = React.useState<SessionInfo | null | undefined>(undefined);
  const [endedReason, setEndedReason] = React.useState("");

  const adopt = React.useCallback((s: SessionInfo | null) => {
    setCsrfToken(s?.csrf_token ?? "");
    setSession(s);
  }, []);

  React.useEffect(() => {
    api<SessionInfo>("GET", "/console/api/session")
      .then(adopt)
      .catch(() => adopt(null));
    onSessionEnded(() => {
      setEndedReason("Your session ended (expired, revoked, or the credentials changed). Sign in again.");
      adopt(null);
    });
    return () => onSessionEnded(null);
  }, [adopt]);

  const value = React.useMemo<SessionState>(
    () => ({
      session,
      endedReason,
      async signIn(body) {
        const s = await api<SessionInfo>("POST", "/console/api/session", body);
        setEndedReason("");
        adopt(s);
        return s;
      },
      async signOut() {
        try {
          await api("DELETE", "/console/api/session");
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
        }
        adopt(null);
      },
    }),
    [session, endedReason, adopt],
  );
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useSession(): SessionState {
  const s = React.useContext(Ctx);
  if (!s) throw new Error("useSession outside SessionProvider");
  return s;
}
