import * as React from "react";
import { Link } from "react-router";
import { Pause, Play, Radio } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Alert, AlertDescription } from "@/components/ui/alert";
import { qs } from "@/lib/api";
import type { CloudEvent } from "@/lib/types";

type State = "off" | "connecting" | "live" | "unavailable" | "reconnecting";

const keep = 100;

/**
 * LiveTail follows the App's events as they are published, over the
 * Server-Sent Events stream GET /v1/events/stream (the session cookie
 * authenticates it; EventSource sends no headers). EventSource reconnects by
 * itself with Last-Event-ID, so a dropped connection resumes with no gap.
 */
export function LiveTail({ type, hrefOf }: { type: string; hrefOf: (source: string, id: string) => string }) {
  const [state, setState] = React.useState<State>("off");
  const [events, setEvents] = React.useState<CloudEvent[]>([]);
  const src = React.useRef<EventSource | null>(null);

  const stop = React.useCallback(() => {
    src.current?.close();
    src.current = null;
    setState("off");
  }, []);

  const start = React.useCallback(() => {
    src.current?.close();
    setState("connecting");
    const es = new EventSource(`/v1/events/stream${qs({ types: type })}`, { withCredentials: true });
    src.current = es;
    let opened = false;
    es.onopen = () => {
      opened = true;
      setState("live");
    };
    es.onmessage = (m) => {
      try {
        const ev = JSON.parse(m.data) as CloudEvent;
        setEvents((evs) => [ev, ...evs].slice(0, keep));
      } catch {
        /* not an event */
      }
    };
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        src.current = null;
        // Closed before it ever opened: the server has no stream to give.
        setState(opened ? "off" : "unavailable");
      } else {
        setState("reconnecting");
      }
    };
  }, [type]);

  React.useEffect(() => () => src.current?.close(), []);
  // A new type filter restarts a running tail.
  React.useEffect(() => {
    if (src.current) start();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [type]);

  const on = state === "live" || state === "connecting" || state === "reconnecting";
  return (
    <Card className="mb-4">
      <CardHeader className="flex-row flex-wrap items-center justify-between gap-3 space-y-0">
        <div>
          <CardTitle className="flex items-center gap-2">
            <Radio className="size-4" aria-hidden="true" />
            Live tail
            <span aria-live="polite" data-testid="live-state">
              {state === "live" && <Badge variant="success">live</Badge>}
              {state === "connecting" && <Badge variant="secondary">connecting…</Badge>}
              {state === "reconnecting" && <Badge variant="warning">reconnecting…</Badge>}
            </span>
          </CardTitle>
          <CardDescription>
            Events appear here as PROST publishes them{type ? <>, of type <span className="font-mono">{type}</span></> : null}.
          </CardDescription>
        </div>
        <Button variant={on ? "outline" : "default"} onClick={on ? stop : start}>
          {on ? <Pause aria-hidden="true" /> : <Play aria-hidden="true" />}
          {on ? "Stop" : "Follow live"}
        </Button>
      </CardHeader>
      {(state !== "off" || events.length > 0) && (
        <CardContent>
          {state === "unavailable" && (
            <Alert variant="destructive">
              <AlertDescription>This PROST serves no event stream: the live tail needs the subscriptions service.</AlertDescription>
            </Alert>
          )}
          {state === "live" && events.length === 0 && <p className="text-sm text-muted-foreground">Waiting for the next event…</p>}
          {events.length > 0 && (
            <ol className="flex flex-col divide-y" aria-label="Live events" data-testid="live-events">
              {events.map((ev) => (
                <li key={`${ev.source}\u0000${ev.id}`} className="flex flex-wrap items-center gap-x-3 gap-y-1 py-2 text-sm">
                  <Link className="font-mono text-xs text-primary underline underline-offset-2" to={hrefOf(ev.source, ev.id)}>
                    {ev.id}
                  </Link>
                  <span className="font-medium">{ev.type}</span>
                  <span className="text-muted-foreground">{ev.source}</span>
                </li>
              ))}
            </ol>
          )}
        </CardContent>
      )}
    </Card>
  );
}
