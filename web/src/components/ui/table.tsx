import * as React from "react";
import { cn } from "@/lib/utils";

/** Table scrolls sideways inside its own region when it is wider than the
 * screen; the region can take the focus so that a keyboard can scroll it. */
export function Table({ className, ...props }: React.TableHTMLAttributes<HTMLTableElement>) {
  const label = props["aria-label"];
  return (
    <div className="w-full overflow-x-auto" tabIndex={0} role={label ? "region" : undefined} aria-label={label ? `${label}, scrollable` : undefined}>
      <table className={cn("w-full caption-bottom text-sm", className)} {...props} />
    </div>
  );
}
export function THead(props: React.HTMLAttributes<HTMLTableSectionElement>) {
  return <thead className="[&_tr]:border-b" {...props} />;
}
export function TBody(props: React.HTMLAttributes<HTMLTableSectionElement>) {
  return <tbody className="[&_tr:last-child]:border-0" {...props} />;
}
export function TR({ className, ...props }: React.HTMLAttributes<HTMLTableRowElement>) {
  return <tr className={cn("border-b transition-colors hover:bg-muted/60", className)} {...props} />;
}
export function TH({ className, ...props }: React.ThHTMLAttributes<HTMLTableCellElement>) {
  return <th scope="col" className={cn("h-10 px-3 text-left align-middle font-medium text-muted-foreground", className)} {...props} />;
}
export function TD({ className, ...props }: React.TdHTMLAttributes<HTMLTableCellElement>) {
  return <td className={cn("px-3 py-2 align-middle", className)} {...props} />;
}
