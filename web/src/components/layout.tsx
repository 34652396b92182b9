import * as React from "react";
import { NavLink, Outlet, useLocation } from "react-router";
import {
  Activity, AppWindow, BarChart3, Factory, FileJson, KeyRound, ListChecks, LogOut, Menu, ScrollText, Send, ShieldCheck, Skull, Workflow, X,
} from "lucide-react";
import { Button } from "@/components/ui/button";
import { useSession } from "@/lib/session";
import { cn } from "@/lib/utils";

interface NavItem {
  to: string;
  label: string;
  icon: React.ComponentType<{ className?: string }>;
}

export const tenantNav: NavItem[] = [
  { to: "/events", label: "Events", icon: Activity },
  { to: "/schemas", label: "Schemas", icon: FileJson },
  { to: "/rules", label: "Rules", icon: Workflow },
  { to: "/subscriptions", label: "Subscriptions", icon: Send },
  { to: "/dead-letters", label: "Dead letters", icon: Skull },
  { to: "/usage", label: "Usage", icon: BarChart3 },
  { to: "/audit", label: "Audit", icon: ShieldCheck },
  { to: "/factory", label: "Factory", icon: Factory },
];

export const operatorNav: NavItem[] = [
  { to: "/operator/apps", label: "Apps", icon: AppWindow },
  { to: "/operator/health", label: "Health and backlog", icon: Activity },
  { to: "/operator/jobs", label: "Jobs", icon: ListChecks },
  { to: "/operator/dead-letters", label: "Dead letters", icon: Skull },
  { to: "/operator/sessions", label: "Console sessions", icon: KeyRound },
];

function Nav({ items, onNavigate }: { items: NavItem[]; onNavigate?: () => void }) {
  return (
    <ul className="flex flex-col gap-1">
      {items.map((it) => (
        <li key={it.to}>
          <NavLink
            to={it.to}
            onClick={onNavigate}
            className={({ isActive }) =>
              cn(
                "flex items-center gap-3 rounded-md px-3 py-2 text-sm font-medium",
                isActive ? "bg-primary text-primary-foreground" : "text-foreground hover:bg-accent hover:text-accent-foreground",
              )
            }
          >
            <it.icon className="size-4" aria-hidden="true" />
            {it.label}
          </NavLink>
        </li>
      ))}
    </ul>
  );
}

/** Layout is the frame of every signed-in page: header, navigation, main. */
export function Layout() {
  const { session, signOut } = useSession();
  const [open, setOpen] = React.useState(false);
  const location = useLocation();
  const mainRef = React.useRef<HTMLElement>(null);
  React.useEffect(() => setOpen(false), [location.pathname]);
  if (!session) return null;
  const items = session.kind === "operator" ? operatorNav : tenantNav;
  return (
    <div className="min-h-screen">
      <a
        href="#main"
        className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded-md focus:bg-background focus:px-3 focus:py-2"
      >
        Skip to content
      </a>
      <header className="sticky top-0 z-40 border-b bg-background">
        <div className="flex h-14 items-center gap-3 px-4">
          <Button
            variant="ghost"
            size="icon"
            className="md:hidden"
            aria-label={open ? "Close menu" : "Open menu"}
            aria-expanded={open}
            aria-controls="nav-mobile"
            onClick={() => setOpen((o) => !o)}
          >
            {open ? <X /> : <Menu />}
          </Button>
          <span className="flex items-center gap-2 font-semibold">
            <ScrollText className="size-5 text-primary" aria-hidden="true" />
            PROST <span className="hidden text-muted-foreground sm:inline">console</span>
          </span>
          <div className="ml-auto flex min-w-0 items-center gap-2 text-sm">
            <span className="truncate" data-testid="whoami">
              <span className="text-muted-foreground">{session.kind === "operator" ? "Operator" : "App"}:</span>{" "}
              <span className="font-medium">{session.name}</span>
            </span>
            <Button variant="outline" size="sm" onClick={() => void signOut()}>
              <LogOut aria-hidden="true" />
              <span>Sign out</span>
            </Button>
          </div>
        </div>
        {open && (
          <nav id="nav-mobile" aria-label="Main" className="border-t p-3 md:hidden">
            <Nav items={items} onNavigate={() => setOpen(false)} />
          </nav>
        )}
      </header>
      <div className="flex min-h-[calc(100vh-3.5rem)]">
        <nav aria-label="Main" className="hidden w-56 shrink-0 border-r bg-background md:block">
          <div className="sticky top-14 p-3">
            <Nav items={items} />
          </div>
        </nav>
        <main id="main" ref={mainRef} tabIndex={-1} className="min-w-0 flex-1 p-4 sm:p-6 lg:p-8">
          <Outlet />
        </main>
      </div>
    </div>
  );
}
