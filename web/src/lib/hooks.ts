import * as React from "react";

export interface AsyncState<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload(): void;
}

/** useAsync runs load when deps change and keeps its latest result. */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: React.DependencyList): AsyncState<T> {
  const [state, setState] = React.useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = React.useState(0);
  React.useEffect(() => {
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true, error: undefined }));
    load(ctl.signal).then(
      (data) => !ctl.signal.aborted && setState({ data, loading: false }),
      (error) => !ctl.signal.aborted && setState({ error, loading: false }),
    );
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return { data: state.data, error: state.error, loading: state.loading, reload: () => setTick((t) => t + 1) };
}

/** useAction wraps a call made by a person: pending while it runs, its error after. */
export function useAction<A extends unknown[], T>(f: (...args: A) => Promise<T>) {
  const [pending, setPending] = React.useState(false);
  const [error, setError] = React.useState<unknown>(undefined);
  const run = React.useCallback(
    async (...args: A): Promise<T | undefined> => {
      setPending(true);
      setError(undefined);
      try {
        return await f(...args);
      } catch (e) {
        setError(e);
        return undefined;
      } finally {
        setPending(false);
      }
    },
    [f],
  );
  return { run, pending, error, setError };
}

/** useTitle sets the document title of a page. */
export function useTitle(title: string) {
  React.useEffect(() => {
    document.title = `${title} · PROST console`;
  }, [title]);
}
