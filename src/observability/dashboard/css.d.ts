// CSS imported by the browser bundle (Bun.build emits it as a separate stylesheet).
declare module '*.css';
