import { PageHeader } from "@/components/common";

export function Events() {
  return <PageHeader title="Events" description="Your App's events." />;
}
